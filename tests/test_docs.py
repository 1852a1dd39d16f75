"""The README and docs/ stay true: config reference, commands, set-up commands and links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lnexp.cli import app
from lnexp.config import reference_markdown
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target), outside code; targets with a scheme are external.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_config_reference_matches_the_schema():
    assert reference_markdown() in (ROOT / "docs" / "config.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_setup_commands():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make run", "make test"]


def test_every_command_is_documented():
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        names += [f"{name} {sub}" for sub in subs] if subs else [name]
    for name in names:
        assert f"lnexp {name}" in README, f"`lnexp {name}` is not in the README"


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _prose(text: str) -> str:
    """The page without fenced code blocks (where `[...](...)` is code, not a link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(text), flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_and_image_resolves(page: Path):
    text = _prose(page.read_text(encoding="utf-8"))
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_file():
            bad.append(f"{target}: no file {file}")
        elif anchor and anchor not in _anchors(file.read_text(encoding="utf-8")):
            bad.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not bad, f"{page.name}: " + "; ".join(bad)


def test_every_figure_in_docs_is_shown_somewhere():
    shown = "".join(p.read_text(encoding="utf-8") for p in PAGES)
    unused = [png.name for png in (ROOT / "docs").glob("*.png") if png.name not in shown]
    assert not unused, f"figures in docs/ no page shows: {unused}"
