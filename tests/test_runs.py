"""lnexp runs: history read from the folders, newest first, filters, show, --json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from lnexp import history
from lnexp.cli import app

SMALL = ("name: tiny\ndata:\n  n_samples: 8\nmodel:\n  in_features: 6\n  out_features: 4\n"
         "output:\n  figures: false\n")


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_runs_lists_filters_and_shows(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL)
    out = str(tmp_path / "out")
    ln = _invoke("run", str(cfg), "-o", out, "-q").stdout.strip()
    bn = _invoke("run", str(cfg), "-o", out, "-q", "--set", "model.norm=bn").stdout.strip()
    assert _invoke("compare", "ln", "bn", "-c", str(cfg), "-o", out, "-q").exit_code == 0
    res = _invoke("sweep", str(cfg), "--grid", "model.norm=bn,rms", "--grid",
                  "data.n_samples=1,4", "-j", "2", "-o", out, "-q", "--no-figure")
    assert res.exit_code == 3
    # a run left 'failed' by a crash
    crashed = Path(ln).parent / "20000101-000000-dead00"
    shutil.copytree(ln, crashed)
    info = json.loads((crashed / "run.json").read_text())
    (crashed / "run.json").write_text(json.dumps({**info, "status": "failed",
                                                  "started": "2000-01-01T00:00:00+0000",
                                                  "error": "RuntimeError: boom"}))

    doc = json.loads(_invoke("runs", "-o", out, "--json").stdout)
    assert doc["kind"] == "runs" and doc["total"] == 5
    kinds = [r["kind"] for r in doc["runs"]]
    assert kinds == ["sweep", "compare", "run", "run", "run"]  # newest first
    assert doc["runs"][-1]["path"] == str(crashed)
    sweep_rec = doc["runs"][0]
    assert sweep_rec["status"] == "partial" and sweep_rec["norm"] == "bn,rms"
    assert sweep_rec["detail"] == "3/4 trials"
    run_rec = next(r for r in doc["runs"] if r["path"] == bn)
    assert run_rec["norm"] == "bn"
    assert run_rec["metrics"]["post_norm.per_feature.var.spread"] < 1e-2

    def paths(*args: str) -> list[str]:
        d = json.loads(_invoke("runs", "-o", out, "--json", *args).stdout)
        return [r["path"] for r in d["runs"]]

    assert set(paths("--kind", "run", "--norm", "ln")) == {ln, str(crashed)}
    assert paths("--status", "failed") == [str(crashed)]
    assert len(paths("--norm", "bn")) == 3  # the bn run, the compare and the sweep
    assert paths("--kind", "sweep", "--status", "completed") == []

    text = _invoke("runs", "-o", out).stdout
    assert "5 runs under" in text and "dead00" in text and "tiny-sweep" in text

    shown = _invoke("runs", "show", "dead00", "-o", out)
    assert shown.exit_code == 0 and "RuntimeError: boom" in shown.stdout
    sweep_dir = sweep_rec["path"]
    shown = json.loads(_invoke("runs", "show", sweep_dir, "--json").stdout)
    assert shown["kind"] == "run_info" and shown["record"]["kind"] == "sweep"
    assert len(shown["sweep"]["summary"]) == 4
    text = _invoke("runs", "show", Path(sweep_dir).name, "-o", out).stdout
    assert "summary:" in text and "(1 failed)" in text
    missing = _invoke("runs", "show", "nope", "-o", out)
    assert missing.exit_code == 2 and "no run folder" in missing.stderr


def test_folders_are_the_source_of_truth(tmp_path: Path) -> None:
    assert history.scan(tmp_path / "nothing") == []
    (tmp_path / "x" / "20250101-000000-aaaaaa").mkdir(parents=True)
    (tmp_path / "x" / "20250101-000000-aaaaaa" / "run.json").write_text("{broken")
    assert history.scan(tmp_path) == []  # unreadable folders are skipped, not fatal


def test_run_json_carries_the_listing_so_metrics_json_is_not_read(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL)
    out = str(tmp_path / "out")
    run_dir = Path(_invoke("run", str(cfg), "-o", out, "-q", "--set",
                           "model.norm=bn").stdout.strip())
    info = json.loads((run_dir / "run.json").read_text())
    assert info["name"] == "tiny" and info["norm"] == "bn"
    assert info["shape"] == {"n_samples": 8, "features": 4}
    want = json.loads(_invoke("runs", "-o", out, "--json").stdout)["runs"][0]
    assert want["metrics"]["post_norm.per_feature.var.spread"] < 1e-2
    # listing does not open metrics.json: the same record without it
    (run_dir / "metrics.json").rename(run_dir / "metrics.json.away")
    assert json.loads(_invoke("runs", "-o", out, "--json").stdout)["runs"][0] == want
    # a folder from before run.json carried the listing falls back to metrics.json
    (run_dir / "metrics.json.away").rename(run_dir / "metrics.json")
    old = {k: v for k, v in info.items() if k not in ("name", "norm", "shape", "metrics")}
    (run_dir / "run.json").write_text(json.dumps(old))
    assert json.loads(_invoke("runs", "-o", out, "--json").stdout)["runs"][0] == want


def test_runs_all_lists_runs_inside_compares_and_sweeps(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL)
    out = str(tmp_path / "out")
    cmp_dir = Path(_invoke("compare", "ln", "bn", "-c", str(cfg), "-o", out, "-q"
                           ).stdout.strip())
    top = json.loads(_invoke("runs", "-o", out, "--json").stdout)
    assert [r["kind"] for r in top["runs"]] == ["compare"]
    assert top["runs"][0]["norm"] == "ln,bn" and top["runs"][0]["detail"] == "2/2 norms"
    every = json.loads(_invoke("runs", "-o", out, "--json", "--all").stdout)
    inner = [r for r in every["runs"] if r["parent"] == str(cmp_dir)]
    assert sorted(r["norm"] for r in inner) == ["bn", "ln"]
    assert all(r["kind"] == "run" and r["name"] == "tiny-compare" for r in inner)
    shown = _invoke("runs", "-o", out, "--all", "--norm", "bn").stdout
    assert f"{cmp_dir.name.rsplit('-', 1)[-1]}/bn" in shown
