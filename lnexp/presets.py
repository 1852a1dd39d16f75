"""The shipped configs as named presets: `lnexp run tutorial`, `lnexp.load_config("images")`.

The top-level configs/ folder is the one source: lnexp/shipped_configs is a symlink to it in
the repository, and the wheel build copies the YAML files through it into the package (package
data), so `pip install lnexp` alone can run every shipped config by name. No torch, no pydantic.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "shipped_configs"
# Short names for the configs a newcomer reaches for first (the file stems work too).
ALIASES = {"tutorial": "default", "images": "image_axes", "sequences": "sequence_axes"}


def names() -> list[str]:
    """Every preset name: the file stems of the shipped configs, sorted."""
    if not FOLDER.is_dir():
        return []
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def path(name: str) -> Path | None:
    """The shipped file for a preset name (or alias), or None when there is none."""
    stem = ALIASES.get(name, name)
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        return None
    candidate = FOLDER / f"{stem}.yaml"
    try:
        return candidate if candidate.is_file() else None
    except OSError:  # e.g. a name longer than the file system allows
        return None


def resolve(config: str | Path) -> Path:
    """`config` as a file: an existing path as given, else a preset of that name, else the
    path unchanged (so the loader reports it missing, as before presets existed)."""
    given = Path(config)
    try:
        if given.exists():
            return given
    except OSError:  # a name too long for the file system: the loader says so, as before
        return given
    preset = path(str(config))
    return preset if preset is not None else given


def describe(name: str) -> str:
    """The first comment line of a preset after the schema line: what it shows."""
    p = path(name)
    if p is None:
        return ""
    for line in p.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("# ").strip()
        if line.startswith("#") and text and not text.startswith("yaml-language-server"):
            return text
    return ""


def listing() -> list[dict[str, str]]:
    """One row per preset: name, aliases, file and what it shows (`lnexp config list`)."""
    aliases: dict[str, list[str]] = {}
    for alias, stem in ALIASES.items():
        aliases.setdefault(stem, []).append(alias)
    return [{"name": n, "aliases": ",".join(aliases.get(n, [])),
             "file": f"configs/{n}.yaml", "description": describe(n)} for n in names()]
