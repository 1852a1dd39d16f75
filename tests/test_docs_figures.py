"""Docs figures come from the code that ships: every docs/*.png is in scripts/make_docs.py's
table with an existing shipped config and a figure lnexp promises for that command, and the
page that embeds it names that config (or command) next to it. Fast: runs no sweep."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from lnexp import registry

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EMBED = re.compile(r"!\[[^\]]*\]\((?:docs/)?([^)/]+\.png)\)")
# How far from an embed the page must name the figure's config: the paragraph(s) around it.
BEFORE, AFTER = 14, 4


def _make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_docs"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


MAKE_DOCS = _make_docs()


def _embeds() -> list[tuple[Path, int, str]]:
    found = []
    for page in PAGES:
        for i, line in enumerate(page.read_text(encoding="utf-8").splitlines()):
            found += [(page, i, m.group(1)) for m in EMBED.finditer(line)]
    return found


def test_every_docs_png_is_in_the_table_with_an_existing_config():
    pngs = sorted(p.name for p in (ROOT / "docs").glob("*.png"))
    assert pngs, "no docs figures found"
    assert sorted(MAKE_DOCS.BY_PNG) == pngs, "docs/*.png and make_docs.FIGURES differ"
    for entry in MAKE_DOCS.FIGURES:
        if entry.config is not None:
            assert (ROOT / entry.config).is_file(), entry
            assert entry.config in entry.args, f"{entry.png}: the command does not use its config"
        else:
            assert entry.args[0] == "inspect", f"{entry.png}: only inspect runs without a config"


def test_each_figure_is_one_lnexp_promises_for_its_command():
    from lnexp.inspect.figures import FIGURES as INSPECT_FIGURES

    promised = {
        "run": {f.file for f in registry.RUN_FIGURES},
        "compare": {f.file for f in registry.COMPARE_FIGURES},
        "sweep": {registry.SWEEP_FIGURE.file},
        "inspect": {f"figures/{name}.png" for name in INSPECT_FIGURES} | {"figures/layer_skip.png"},
    }
    for entry in MAKE_DOCS.FIGURES:
        assert entry.figure in promised[entry.args[0]], entry


def test_every_embedded_figure_names_its_config_next_to_it():
    embeds = _embeds()
    assert {png for _, _, png in embeds} == set(MAKE_DOCS.BY_PNG), \
        "a docs figure is not embedded anywhere, or an embed has no docs figure"
    for page, i, png in embeds:
        entry = MAKE_DOCS.BY_PNG[png]
        lines = page.read_text(encoding="utf-8").splitlines()
        near = "\n".join(lines[max(0, i - BEFORE):i + AFTER + 1])
        name = entry.config or MAKE_DOCS.command(entry)
        assert name in near, f"{page.name}:{i + 1}: {png} is embedded without naming {name}"


def test_the_script_refuses_an_unknown_figure(capsys):
    assert MAKE_DOCS.main(["nothing.png"]) == 2
    assert "error: not a docs figure: nothing.png" in capsys.readouterr().err


@pytest.mark.parametrize("entry", MAKE_DOCS.FIGURES, ids=lambda e: e.png)
def test_list_prints_each_row(entry, capsys):
    MAKE_DOCS.main(["--list"])
    rows = capsys.readouterr().out.splitlines()
    row = f"{entry.png}\t{entry.config or '-'}\tlnexp {' '.join(entry.args)}\t{entry.figure}"
    assert row in rows
