"""lnexp.report: the HTML page and the Markdown summary of run, compare and sweep folders,
made from real folders written by the CLI (once per session)."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html import escape
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
    """No script, no URL but data: images, in-page anchors and relative links to a child
    folder's report.html, a CSP forbidding fetches, and each embedded image byte-for-byte a
    PNG of the folder."""
    tags = parse(html)
    assert "<script" not in html.lower()
    assert "default-src 'none'" in html
    assert not re.search(r"(?i)\b(?:https?|ftp|file):|//[a-z0-9.-]+\.[a-z]{2,}/|url\(|@import",
                         html)
    for url in tags.urls:
        if not url.startswith(("data:image/png;base64,", "#")):
            assert re.fullmatch(r"[\w.-]+/report\.html", url), url[:60]
            assert (folder / url).parent.is_dir(), url
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
    assert len(tables["Failed trials"][0].blocks[0].rows) == 2
    # the completed trials (the failed ones are in the section above)
    assert len(tables["Trials"][1].blocks[0].rows) == 6
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
     "a 'dataset' folder; lnexp report knows run, compare, sweep, inspect folders"),
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


# --------------------------------------------------------------------------- issue 24

def _links(html: str) -> list[str]:
    return [u for u in parse(html).urls if not u.startswith(("data:", "#"))]


def test_pages_lead_with_the_configs_claim_then_what_was_found(folders: dict[str, Path]) -> None:
    claim = "The tutorial's experiment: Linear(100, 50) -> LayerNorm(50)"
    for kind in ("run", "compare", "sweep"):
        doc = report.read_folder(folders[kind])
        assert doc.lead and doc.lead[0].startswith(claim), (kind, doc.lead)
        assert not any(p.startswith(("lnexp ", "Run:", "yaml-language")) for p in doc.lead)
        html = report.to_html(doc)
        first = html.index(escape(claim))
        assert first < html.index('class="headline"') < html.index("<section")
    cmp = [t.text for t in report.read_folder(folders["compare"]).headline]
    assert "bn standardizes features; ln standardizes samples; none standardizes neither" in cmp[0]
    sweep = [t.text for t in report.read_folder(folders["sweep"]).headline]
    stored = json.loads((folders["sweep"] / "sweep.json").read_text())
    medians = {(r["model.norm"], r["data.n_samples"]): r["metrics"][stored["metrics"][0]]["median"]
               for r in stored["summary"] if r["completed"]}
    lo, hi = min(medians, key=medians.__getitem__), max(medians, key=medians.__getitem__)
    assert any(f"the lowest is model.norm={lo[0]} data.n_samples={lo[1]}" in t
               and f"the highest model.norm={hi[0]} data.n_samples={hi[1]}" in t
               for t in sweep), sweep


def test_compare_and_sweep_link_to_child_pages_the_command_writes(invoke, folders, tmp_path):
    for kind, count in (("compare", 3), ("sweep", 8)):
        src = tmp_path / kind
        shutil.copytree(folders[kind], src)
        res = invoke("report", str(src))
        assert res.exit_code == 0, res.output
        html = (src / "report.html").read_text(encoding="utf-8")
        links = _links(html)
        assert len(set(links)) == count, links
        for link in links:
            child = (src / link).read_text(encoding="utf-8")
            assert child.startswith("<!DOCTYPE html>") and "lnexp run" in child
            assert "data:image/png" in child or kind == "sweep"  # self-contained, own figures
        # -o elsewhere: the links are relative to where the page is written
        (tmp_path / "pages").mkdir(exist_ok=True)
        res = invoke("report", str(src), "-o", str(tmp_path / "pages" / f"{kind}.html"))
        assert res.exit_code == 0, res.output
        other = (tmp_path / "pages" / f"{kind}.html").read_text(encoding="utf-8")
        for link in _links(other):
            assert (tmp_path / "pages" / link).resolve().is_file(), link


def test_completed_trials_folded_failed_trials_open(folders: dict[str, Path]) -> None:
    html = report.to_html(report.read_folder(folders["sweep"]))
    assert "<details open><summary>2 failed</summary>" in html
    assert re.search(r"<details><summary>6 completed \([\d.]+ s in all\)</summary>", html)
    assert html.index("2 failed</summary>") < html.index("6 completed")
    md = report.to_markdown(report.read_folder(folders["sweep"]))
    assert "| **0** | model.norm=bn data.n_samples=1 seed=0 |" in md  # unfolded in Markdown


def test_times_durations_block_yaml_and_no_literal_backticks(folders: dict[str, Path]) -> None:
    for kind in ("run", "compare", "sweep"):
        doc = report.read_folder(folders[kind])
        facts = dict(doc.facts)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", facts["started"]), facts
        assert re.fullmatch(r"\d+ s|\d+ min \d\d s", facts["duration"]), facts
        html = report.to_html(doc)
        text = re.sub(r"<[^>]+>", "", html)
        assert "`" not in text, kind
    run = report.to_html(report.read_folder(folders["run"]))
    assert "model:\n  in_features: 8\n  out_features: 6\n" in run  # one key a line
    assert "model: {" not in run
    assert "<code>lnexp sweep --resume</code>" in report.to_html(report.read_folder(
        folders["sweep"]))
    sweep = report.read_folder(folders["sweep"])
    code = next(b for s in sweep.sections if s.title == "Definition" for b in s.blocks
                if hasattr(b, "text") and "grid" in b.text)
    assert "[" not in code.text and "{" not in code.text, code.text


def test_each_figure_opens_full_size_through_its_anchor(folders: dict[str, Path]) -> None:
    html = report.to_html(report.read_folder(folders["run"]))
    for stem in ("overview", "heatmap"):
        assert f'<figure id="fig-{stem}"><div class="frame"><a href="#fig-{stem}"><img' in html
        assert re.search(rf'<a class="full" href="#fig-{stem}">full size \(\d+ × \d+ px\)', html)
    assert "figure:target img { max-width: none; }" in html


def test_a_figure_that_was_not_drawn_gets_a_note(folders: dict[str, Path],
                                                 tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(folders["run"], run)
    (run / "figures" / "heatmap.png").unlink()
    doc = report.read_folder(run)
    figs = next(s for s in doc.sections if s.title == "Figures")
    notes = [b.text for b in figs.blocks if hasattr(b, "tone") and b.tone == "warn"]
    assert notes == ["heatmap.png was not drawn: this config draws it, but it is not in the "
                     "folder (lnexp printed why on stderr; the metrics are complete)."]
    assert not any("not drawn" in t.text for s in report.read_folder(folders["train"]).sections
                   for t in s.blocks if hasattr(t, "tone"))  # figures off: nothing expected


def test_inspect_folder_gets_a_page(invoke, folders: dict[str, Path], tmp_path: Path) -> None:
    folder = folders["inspect"]
    doc = report.read_folder(folder)
    assert doc.kind == "inspect" and doc.status == "completed"
    assert doc.headline[0].text == "1 norm layer(s) hooked and measured."
    html = report.to_html(doc)
    tags = assert_self_contained(html, folder)
    assert len(tags.imgs) == len(list((folder / "figures").glob("*.png"))) >= 1
    layers = next(s for s in doc.sections if s.title == "Norm layers").blocks[0]
    stored = json.loads((folder / "inspect.json").read_text())["layers"][0]
    assert layers.rows[0][:2] == [stored["name"], "LayerNorm"]
    assert layers.rows[0][4] == fmt(stored["post"]["per_token"]["var"]["p50"])
    src = tmp_path / "inspect"
    shutil.copytree(folder, src)
    res = invoke("report", str(src))
    assert res.exit_code == 0 and (src / "report.html").is_file(), res.output
