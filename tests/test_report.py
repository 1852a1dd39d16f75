"""lnexp.report: the HTML page and the Markdown summary of run, compare and sweep folders,
made from real folders written by the CLI (once per session)."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lnexp import report
from lnexp.errors import RunFolderError
from lnexp.report.parts import fmt


class _Tags(HTMLParser):
    """Collects tags and checks that every non-void element is closed in order."""

    VOID: ClassVar[set[str]] = {"meta", "img", "br", "hr", "link", "input", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        for key in ("src", "href", "action", "poster", "data"):
            if a.get(key):
                self.urls.append(str(a[key]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    return p


def assert_self_contained(html: str, folder: Path) -> _Tags:
    """No script, no URL but data: images and in-page anchors, a CSP forbidding fetches,
    and each embedded image byte-for-byte a PNG of the folder."""
    tags = parse(html)
    assert "<script" not in html.lower()
    assert "default-src 'none'" in html
    assert not re.search(r"(?i)\b(?:https?|ftp|file):|//[a-z0-9.-]+\.[a-z]{2,}/|url\(|@import",
                         html)
    for url in tags.urls:
        assert url.startswith(("data:image/png;base64,", "#")), url[:60]
    pngs = {p.read_bytes() for p in folder.rglob("*.png")}
    for img in tags.imgs:
        data = base64.b64decode(str(img["src"]).split(",", 1)[1], validate=True)
        assert data in pngs
        assert img.get("alt") and img.get("width") and img.get("height")
    return tags


def test_run_page_has_verdict_tables_figures_config_and_env(folders: dict[str, Path]) -> None:
    run = folders["run"]
    doc = report.read_folder(run)
    html = report.to_html(doc)
    tags = assert_self_contained(html, run)
    metrics = json.loads((run / "metrics.json").read_text())
    figures = sorted((run / "figures").glob("*.png"))
    assert len(figures) == 2 and len(tags.imgs) == 2
    assert "completed" in html and "LayerNorm (ln)" in html
    assert "Expectations: 1 of 2 failed." in html
    post = metrics["stages"]["post_norm"]["per_sample"]["summary"]["var"]
    assert f"{fmt(post['min'])} … {fmt(post['max'])}" in html
    assert "Every sample is standardized after the norm" in html
    for line in metrics["explanation"]:
        assert line.replace("'", "&#x27;") in html
    assert "norm: ln" in html  # config.yaml, verbatim
    assert json.loads((run / "env.json").read_text())["torch"] in html
    # The first figure comes first, and the page is a pure function of the folder.
    assert html.index("overview.png") < html.index("heatmap.png")
    assert report.to_html(report.read_folder(run)) == html


def test_markdown_summary_has_the_tables_and_no_images(folders: dict[str, Path]) -> None:
    md = report.to_markdown(report.read_folder(folders["run"]))
    assert md.startswith("### lnexp run · default — completed")
    assert "❌ Expectations: 1 of 2 failed." in md
    assert "| **post_norm.per_feature.var.spread <= 0.01** |" in md
    assert "| --- | ---: | ---: |" in md
    assert "data:image" not in md and "<img" not in md
    assert "lnexp report" in md  # says where the figures are
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|") and line.count("|") - line.count("\\|") >= 3


def test_compare_page_has_one_column_per_norm_and_depth_rows(folders: dict[str, Path]) -> None:
    cmp = folders["compare"]
    html = report.to_html(report.read_folder(cmp))
    tags = assert_self_contained(html, cmp)
    assert len(tags.imgs) == 2  # comparison.png and layers.png; per-norm figures stay out
    for norm in ("BatchNorm1d", "LayerNorm", "Identity"):
        assert norm in html
    assert "grad norm first / last block" in html
    assert "3 of 3 norms computed" in html
    md = report.to_markdown(report.read_folder(cmp))
    assert "| after the norm | bn | ln | none |" in md


def test_partial_compare_says_which_norm_and_why(folders: dict[str, Path]) -> None:
    doc = report.read_folder(folders["partial"])
    assert doc.status == "partial"
    lines = [t.text for t in doc.headline]
    assert any(t.startswith("bn: not computed - not defined for a batch of 1") for t in lines)
    assert "not computed" in report.to_markdown(doc)
    parse(report.to_html(doc))


def test_sweep_page_has_summary_failed_trials_and_every_trial(folders: dict[str, Path]) -> None:
    sw = folders["sweep"]
    doc = report.read_folder(sw)
    html = report.to_html(doc)
    assert_self_contained(html, sw)
    stored = json.loads((sw / "sweep.json").read_text())
    assert doc.headline[0].text == "6 of 8 trials completed, 2 failed."
    tables = {s.title: s.blocks for s in doc.sections}
    summary = tables["Summary"][0]
    assert len(summary.rows) == len(stored["summary"]) == 4
    assert summary.columns[:3] == ["model.norm", "data.n_samples", "n"]
    assert len(tables["Failed trials"][0].rows) == 2
    assert len(tables["Trials"][0].rows) == 8
    assert "summary.png" in html
    # the cells, the caption and the figure's caption all say median [min, max] (issue 19 #4)
    assert summary.caption.startswith("Median [min, max] over seeds")
    assert "±" not in html and "std band" not in html and "min–max band" in html
    row = next(r for r in stored["summary"] if r["completed"] > 1)
    stat = row["metrics"][stored["metrics"][0]]
    cells = [c for r in summary.rows for c in r]
    assert f"{fmt(stat['median'])} [" in " ".join(cells)
    md = report.to_markdown(doc)
    assert "#### Failed trials" in md and "#### Trials" not in md  # every trial: HTML only


def test_a_file_inside_a_folder_stands_for_the_folder(folders: dict[str, Path]) -> None:
    assert report.read_folder(folders["run"] / "metrics.json").path == folders["run"]
    assert report.folder_kind(folders["sweep"]) == "sweep"


def test_failed_run_without_metrics_still_gets_a_page(folders: dict[str, Path],
                                                      tmp_path: Path) -> None:
    run = tmp_path / "failed"
    shutil.copytree(folders["run"], run)
    (run / "metrics.json").unlink()
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "failed",
                                              "error": "RuntimeError: boom"}))
    doc = report.read_folder(run)
    assert doc.status == "failed"
    assert any(t.tone == "fail" and "boom" in t.text for t in doc.headline)
    html = report.to_html(doc)
    assert 'class="badge fail"' in html and "norm: ln" in html
    parse(html)


@pytest.mark.parametrize("setup, message", [
    (lambda p: p, "not an lnexp folder"),
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", "not a folder"),
    (lambda p: (p / "run.json").write_text('{"kind": "dataset"}') and p,
     "a 'dataset' folder; lnexp report knows run, compare, sweep folders"),
    (lambda p: (p / "run.json").write_text("{not json") and p, "cannot read"),
])
def test_unknown_folders_are_clear_errors(tmp_path: Path, setup: Any, message: str) -> None:
    with pytest.raises(RunFolderError, match=re.escape(message)):
        report.read_folder(setup(tmp_path))


def test_a_folder_of_runs_points_to_one(folders: dict[str, Path]) -> None:
    with pytest.raises(RunFolderError, match=r"holds \d+ lnexp folder\(s\), e\.g\."):
        report.read_folder(folders["run"].parent)


def test_text_from_the_folder_is_escaped(folders: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(folders["run"], run)
    doc = json.loads((run / "metrics.json").read_text())
    doc["explanation"] = ["<script>alert(1)</script> | a pipe"]
    (run / "metrics.json").write_text(json.dumps(doc))
    html = report.to_html(report.read_folder(run))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --------------------------------------------------------------------------- the command

def test_report_command_writes_next_to_the_folder_by_default(invoke, folders, tmp_path):
    src = tmp_path / "run"
    shutil.copytree(folders["run"], src)
    res = invoke("report", str(src))
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(src / "report.html")
    assert (src / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    res = invoke("report", str(folders["compare"]), "-o", str(tmp_path / "c.html"))
    assert res.exit_code == 0 and (tmp_path / "c.html").stat().st_size > 10_000


def test_report_command_markdown_and_errors(invoke, folders, tmp_path):
    res = invoke("report", str(folders["sweep"]), "--markdown")
    assert res.exit_code == 0 and res.stdout.lstrip().startswith("#") and "|" in res.stdout
    assert not (folders["sweep"] / "report.html").exists()
    res = invoke("report", str(tmp_path))
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    res = invoke("report", str(folders["run"]), "-o", str(tmp_path / "no" / "such" / "r.html"))
    assert res.exit_code == 2 and "cannot write" in res.stderr
