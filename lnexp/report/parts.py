"""What the run, compare and sweep builders share: number formats, reading a folder's files
(tolerating missing or broken ones), and the status, environment, config and figure sections.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

from lnexp.report.document import Code, Fields, Figure, Section, Text, Tone
from lnexp.store import reading

# Long tables are cut here on the page (the CSV/JSON files in the folder have every row).
MAX_ROWS = 1000
FIGURE_CAPTIONS = {
    "overview": "The distribution of all values and of the chosen sample · per-feature "
                "statistics (over the samples, dim 0) · per-sample statistics (over the "
                "features, dim 1); blue before the norm, green after.",
    "heatmap": "The activation matrix before and after the norm, with per-feature and "
               "per-sample std margins.",
    "layers": "Activation std and weight-gradient norm (log) by block, at initialization.",
    "training": "Loss, held-out accuracy in eval vs train mode, gradient norm and "
                "update/weight ratio by layer over the steps.",
    "training_diagnostics": "Per block over training (train.log_every): residual stream RMS, "
                            "largest |activation| and its ratio to the median, excess "
                            "kurtosis, weight-gradient norm, largest attention logit.",
    "comparison": "One column per norm: per-feature variance, per-sample variance and the "
                  "activation heatmap on one colour scale.",
    "summary": "Each metric against a swept key, one line per norm: the median over the "
               "seeds, with a min–max band.",
}
FIGURE_ORDER = ("overview", "heatmap", "layers", "training", "training_diagnostics")


def fmt(x: Any) -> str:
    """A number as the terminal tables print it: 4 decimals, or 4 significant digits in
    scientific notation outside 1e-3..1e5; None as 'n/a'; ints and text as they are."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if not isinstance(x, float):
        return str(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"


def precise(x: Any) -> str:
    """A number with 6 significant digits, for values checked against a bound (0.99998, not
    1.0000 next to `<= 1`)."""
    return f"{x:.6g}" if isinstance(x, float) and not isinstance(x, bool) else fmt(x)


def span(lo: Any, hi: Any) -> str:
    """`min … max`, or one number when both print the same."""
    a, b = fmt(lo), fmt(hi)
    return a if a == b else f"{a} … {b}"


def plural(k: Any, word: str) -> str:
    """`1 sample`, `100 samples`."""
    return f"{fmt(k)} {word}" + ("" if k == 1 else "s")


def plain(v: Any) -> str:
    """A config value as YAML would write it inline: true, null, bn, [1, 2]."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str | int | bool) or v is None:
        return json.dumps(v) if not isinstance(v, str) else v
    return json.dumps(v, separators=(", ", ": "))


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON document of the folder, None when the file is absent; "cannot read FILE: why"
    (exit 2) when it is unreadable or not of the shape lnexp writes (lnexp.store.reading)."""
    return reading.read_json_or_none(path)


def read_text(path: Path) -> str | None:
    """config.yaml as text (bounded, regular files only), None when absent or unreadable: the
    config is shown, never trusted."""
    try:
        return reading.read_text(path)
    except reading.UnreadableFile:
        return None


def safe_yaml(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    from lnexp.config.loading import load_yaml  # the config loader's depth and alias bounds
    from lnexp.errors import ConfigError

    try:
        data, _ = load_yaml(text, "config.yaml")
    except ConfigError:
        return None
    return data if isinstance(data, dict) else None


def status_word(info: dict[str, Any] | None, fallback: str) -> str:
    return str(info.get("status") or fallback) if info else fallback


def status_line(kind: str, info: dict[str, Any] | None) -> Text | None:
    """A headline for anything but `completed`."""
    status = status_word(info, "unknown")
    if status == "completed":
        return None
    error = (info or {}).get("error")
    what = {"partial": "partly done", "failed": "failed", "interrupted": "interrupted",
            "running": "still running (or killed without a chance to say so)",
            "unknown": "no run.json, status unknown"}.get(status, status)
    tone: Tone = "warn" if status in ("partial", "running", "unknown") else "fail"
    return Text(f"This {kind} is {what}" + (f": {error}" if error else "."), tone)


def when(stamp: Any) -> str:
    """run.json's `2026-12-03T15:39:34+0000` as `2026-12-03 15:39:34 UTC` (another offset is
    kept: `… +0100`); anything else as it is."""
    from datetime import datetime

    try:
        t = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return str(stamp)
    zone = "UTC" if t.utcoffset() is not None and not t.utcoffset() else t.strftime("%z")
    return f"{t:%Y-%m-%d %H:%M:%S} {zone}"


def duration(seconds: Any) -> str:
    """0.42 s, 12.3 s, 4 min 05 s, 2 h 03 min; n/a for what is not a number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
        return "n/a"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _elapsed(info: dict[str, Any]) -> float | None:
    from datetime import datetime

    try:
        a, b = (datetime.strptime(str(info[k]), "%Y-%m-%dT%H:%M:%S%z")
                for k in ("started", "finished"))
    except (KeyError, ValueError):
        return None
    return (b - a).total_seconds()


def when_fields(info: dict[str, Any] | None, seconds: Any = None) -> list[tuple[str, str]]:
    """started, finished, duration (`seconds` when known precisely, else from the 1-second
    timestamps) and the command."""
    if not info:
        return []
    out = [("started", when(info["started"]))] if info.get("started") else []
    if info.get("finished"):
        out.append(("finished", when(info["finished"])))
        took = seconds if seconds is not None else _elapsed(info)
        if took is not None:
            out.append(("duration", duration(took) if seconds is not None
                        else f"{took:.0f} s" if took < 60 else duration(took)))
    argv = info.get("argv")
    if isinstance(argv, list) and argv:
        # shell-quoted: pasted into a shell it runs the same command
        out.append(("command", shlex.join(["lnexp", *map(str, argv[1:])])))
    return out


def header_comment(info: dict[str, Any] | None, name: Any) -> list[str]:
    """The paragraphs of the header comment of the config the folder was made from: the file
    named on its command line (run.json argv) when it still exists and has that `name`, else
    the shipped config of that name. The schema line and command lines are left out. Empty
    when neither is found: the folder's config.yaml is the resolved config, without comments."""
    for candidate in _config_files(info, name):
        try:
            text = reading.read_text(candidate)
        except reading.UnreadableFile:
            continue
        data = safe_yaml(text)
        if data is None or data.get("name") != name:
            continue
        return _paragraphs(text)
    return []


def _config_files(info: dict[str, Any] | None, name: Any) -> list[Path]:
    from lnexp import presets

    argv = [str(a) for a in ((info or {}).get("argv") or [])[1:]]
    out = [Path(a) for a in argv if a.endswith((".yaml", ".yml"))]
    shipped = presets.path(str(name)) if isinstance(name, str) and name else None
    return [*out, *([shipped] if shipped else [])]


def _paragraphs(text: str) -> list[str]:
    paras: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        if body.startswith("yaml-language-server"):
            continue
        if not body or body.startswith(("lnexp ", "Run:")):  # a blank line or a command
            paras.append([])
            continue
        paras[-1].append(body)
    return [" ".join(p) for p in paras if p]


def env_section(env: dict[str, Any] | None, note: str = "") -> Section | None:
    if not env:
        return None
    items = [(k, " ".join(map(str, v)) if isinstance(v, list) else fmt(v) if v is not None
              else "n/a") for k, v in env.items()]
    blocks: list[Any] = [Fields(items)]
    if note:
        blocks.insert(0, Text(note))
    return Section("Environment", blocks, summary=False)


def config_section(text: str | None, title: str = "config.yaml",
                   note: str = "") -> Section | None:
    """The resolved config in block style (one key a line, as the shipped configs are
    written); the file itself verbatim when it does not parse."""
    if text is None:
        return None
    data = safe_yaml(text)
    if data is not None:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=88)
    blocks: list[Any] = [Code(title, text.rstrip("\n"))]
    if note:
        blocks.insert(0, Text(note))
    return Section("Resolved config", blocks, summary=False)


def figures_section(paths: list[Path], expected: list[Path] | None = None) -> Section | None:
    """The PNGs that exist, and a note for each `expected` one that is missing (a figure
    lnexp could not draw is skipped with a warning, the metrics are written regardless)."""
    figs = [Figure(p.stem, p, FIGURE_CAPTIONS.get(p.stem, "")) for p in paths if p.is_file()]
    blocks: list[Any] = list(figs)
    for p in expected or []:
        if not p.is_file():
            blocks.append(Text(f"{p.name} was not drawn: this config draws it, but it is not "
                               f"in the folder (lnexp printed why on stderr; the metrics "
                               f"are complete).", "warn"))
    return Section("Figures", blocks, summary=False) if blocks else None


class _Attrs(dict):  # type: ignore[type-arg]
    """A config dict read as attributes (cfg.model.depth), for the registry's figure rules."""

    def __getattr__(self, key: str) -> Any:
        value = self.get(key)
        return _Attrs(value) if isinstance(value, dict) else value


def expected_figures(path: Path, cfg: dict[str, Any], kind: str = "run") -> list[Path]:
    """The figures the registry says this config draws (none when output.figures is off)."""
    from lnexp import registry

    if not cfg or not (cfg.get("output") or {}).get("figures", True):
        return []
    specs = registry.RUN_FIGURES if kind == "run" else registry.COMPARE_FIGURES
    try:
        return [path / f.file for f in specs if f.when(_Attrs(cfg))]
    except (TypeError, AttributeError):  # a config of another lnexp version
        return []


def run_figures(path: Path) -> list[Path]:
    found = sorted((path / "figures").glob("*.png"))
    rank = {name: i for i, name in enumerate(FIGURE_ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
