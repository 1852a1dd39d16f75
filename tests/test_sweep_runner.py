"""lnexp sweep (sweep.runner through the CLI): dry-run validation, parallel trials with
correct aggregates, partial failure (exit 3), a real interrupted sweep resumed, and a
torch-free parent."""

from __future__ import annotations

import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lnexp import expect
from lnexp.errors import RunFolderError
from lnexp.sweep import summary
from lnexp.sweep.folder import SweepFolder
from lnexp.sweep.workers import HOLD_ENV
from tests.conftest import TINY_SWEEP
from tests.conftest import invoke_app as _invoke

LNEXP = Path(sys.executable).with_name("lnexp")
SMALL = TINY_SWEEP


@pytest.fixture
def cfg(tiny_sweep_cfg: Path) -> Path:
    return tiny_sweep_cfg


# --------------------------------------------------------------------------- expansion

def test_dry_run_lists_trials_and_runs_nothing(cfg: Path, tmp_path: Path) -> None:
    res = _invoke("sweep", str(cfg), "--grid", "model.norm=bn,ln", "--seeds", "3",
                  "--dry-run", "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert "6 trials" in res.stdout and "t005-ln_2" in res.stdout
    assert not (tmp_path / "out").exists()


def test_dry_run_catches_every_bad_trial_before_anything_runs(cfg: Path, tmp_path: Path
                                                              ) -> None:
    # group with 3 groups does not divide 4 features; n_samples 0 is out of range
    res = _invoke("sweep", str(cfg), "--grid", "model.norm=ln,group",
                  "--grid", "model.groups=2,3", "--grid", "data.n_samples=0,4",
                  "-o", str(tmp_path / "out"))
    assert res.exit_code == 2
    err = res.stderr
    assert "trial 6 (model.norm=group model.groups=3 data.n_samples=0)" in err
    assert "trial 7 (model.norm=group model.groups=3 data.n_samples=4)" in err
    assert "data.n_samples" in err and "model.groups" in err
    assert "trials are invalid; nothing was run" in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- running

def _read(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


AGGREGATE = ["--grid", "model.norm=bn,ln", "--grid", "data.n_samples=2,8", "--seeds", "3",
             "-j", "2", "--no-figure"]


@pytest.fixture(scope="module")
def local_summary(tmp_path_factory: pytest.TempPathFactory) -> str:
    """summary.csv of the AGGREGATE sweep on the local executor: every executor must match."""
    tmp = tmp_path_factory.mktemp("reference")
    (tmp / "tiny.yaml").write_text(SMALL)
    res = _invoke("sweep", str(tmp / "tiny.yaml"), *AGGREGATE, "-q", "-o", str(tmp))
    assert res.exit_code == 0, res.output
    return (Path(res.stdout.strip()) / "summary.csv").read_text()


@pytest.mark.slow  # starts real processes
def test_two_workers_aggregate_matches_the_trials(cfg: Path, tmp_path: Path,
                                                  executor_args: list[str],
                                                  local_summary: str) -> None:
    res = _invoke("sweep", str(cfg), *AGGREGATE, *executor_args, "--json",
                  "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kind"] == "sweep" and doc["status"] == "completed"
    sweep_dir = Path(doc["sweep_dir"])
    assert sweep_dir.parent.name == "tiny-sweep"
    assert doc["counts"]["completed"] == 12
    stored = _read(sweep_dir)
    assert len({t["hash"] for t in stored["trials"]}) == 12
    metrics = stored["metrics"]
    assert metrics == list(summary.DEFAULT_METRICS)
    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        members = [t for t in stored["trials"]
                   if t["params"]["model.norm"] == row["model.norm"]
                   and str(t["params"]["data.n_samples"]) == row["data.n_samples"]]
        assert len(members) == 3 and row["completed"] == "3"
        for t in members:
            run = json.loads((sweep_dir / t["run_dir"] / "run.json").read_text())
            assert run["status"] == "completed"
        for m in metrics:
            values = [expect.metric_value(json.loads(
                (sweep_dir / t["run_dir"] / "metrics.json").read_text()), m) for t in members]
            assert float(row[f"{m}.mean"]) == pytest.approx(statistics.mean(values),
                                                            rel=1e-12, abs=1e-15)
            assert float(row[f"{m}.std"]) == pytest.approx(statistics.stdev(values),
                                                           rel=1e-9, abs=1e-15)
            assert row[f"{m}.n"] == "3"
    # bn on a batch of 2 maps every feature to ±d/sqrt(d²+eps): per-feature variance ~1
    bn2 = next(r for r in rows if r["model.norm"] == "bn" and r["data.n_samples"] == "2")
    assert float(bn2["post_norm.per_feature.var.spread.mean"]) < 0.05
    # two long-lived worker processes took all 12 trials, one torch thread each (2 CPUs)
    pids = {t["worker_pid"] for t in stored["trials"]}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    assert all(t["cpu_seconds"] > 0 and t["threads"] >= 1 for t in stored["trials"])
    # the same numbers wherever the trials ran
    assert (sweep_dir / "summary.csv").read_text() == local_summary
    assert not (sweep_dir / "journal.jsonl").exists()  # folded into sweep.json


@pytest.mark.slow  # starts real processes
def test_trials_draw_their_figures_with_the_default_figure_workers(tmp_path: Path) -> None:
    # Every other sweep test turns figures off; here each trial forks its figure children
    # inside a sweep worker (the forkserver's at-fork guard once killed them: issue 19 #1).
    from PIL import Image

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL.replace("figures: false", "figures: true"))
    res = _invoke("sweep", str(cfg), "--grid", "model.norm=bn,ln", "--seeds", "2", "-j", "2",
                  "--json", "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["status"] == "completed" and doc["counts"]["completed"] == 4
    sweep_dir = Path(doc["sweep_dir"])
    for t in _read(sweep_dir)["trials"]:
        for name in ("overview.png", "heatmap.png"):
            with Image.open(sweep_dir / t["run_dir"] / "figures" / name) as im:
                im.load()
                assert im.size[0] > 100 and im.size[1] > 100
    with Image.open(sweep_dir / "summary.png") as im:
        im.load()


@pytest.mark.slow  # starts real processes
def test_partial_failure_exits_3_and_others_complete(cfg: Path, tmp_path: Path,
                                                     executor_args: list[str]) -> None:
    res = _invoke("sweep", str(cfg), "--grid", "model.norm=bn,ln",
                  "--grid", "data.n_samples=1,4", "-j", "2", *executor_args,
                  "-o", str(tmp_path / "out"))
    assert res.exit_code == 3, res.output
    assert "FAILED t000-bn_1" in res.stderr and "not defined for a batch of 1" in res.stderr
    assert "1 of 4 trials not completed" in res.stderr
    assert "lnexp sweep --resume" in res.stderr
    assert "(1 failed)" in res.stdout
    (sweep_dir,) = (tmp_path / "out" / "tiny-sweep").iterdir()
    doc = _read(sweep_dir)
    assert doc["status"] == "partial"
    assert [t["status"] for t in doc["trials"]] == ["failed", "completed", "completed",
                                                    "completed"]
    assert json.loads((sweep_dir / "run.json").read_text())["status"] == "partial"
    failed_run = json.loads((sweep_dir / doc["trials"][0]["run_dir"] / "run.json").read_text())
    assert failed_run["status"] == "failed"


@pytest.mark.slow  # starts real processes
def test_nothing_completed_is_failed_not_partial(cfg: Path, tmp_path: Path) -> None:
    # issue 19 #5: 0 of N completed read `partial` with an empty-axes summary.png
    res = _invoke("sweep", str(cfg), "--set", "model.norm=bn", "--grid", "data.n_samples=1",
                  "--grid", "model.in_features=5,6", "-j", "2", "-o", str(tmp_path / "out"))
    assert res.exit_code == 3, res.output
    assert "nothing completed (exit 3): 0 of 2 trials completed" in res.stderr
    assert "partly done" not in res.stderr
    assert "0 of 2 trials completed: nothing to summarize" in res.stdout
    (sweep_dir,) = (tmp_path / "out" / "tiny-sweep").iterdir()
    assert _read(sweep_dir)["status"] == "failed"
    run = json.loads((sweep_dir / "run.json").read_text())
    assert run["status"] == "failed" and run["error"].startswith("nothing completed")
    assert not (sweep_dir / "summary.png").exists()


@pytest.mark.slow  # starts real processes
def test_fail_fast_stops_starting_trials(cfg: Path, tmp_path: Path) -> None:
    res = _invoke("sweep", str(cfg), "--grid", "data.n_samples=1,2,3,4",
                  "--set", "model.norm=bn", "-j", "1", "--fail-fast",
                  "-o", str(tmp_path / "out"))
    assert res.exit_code == 3
    (sweep_dir,) = (tmp_path / "out" / "tiny-sweep").iterdir()
    assert [t["status"] for t in _read(sweep_dir)["trials"]] == ["failed", "pending",
                                                                 "pending", "pending"]


@pytest.mark.slow  # starts real processes
def test_killed_sweep_resumes_without_rerunning_completed_trials(cfg: Path, tmp_path: Path
                                                                  ) -> None:
    out = tmp_path / "out"
    args = ["sweep", str(cfg), "--grid", "model.norm=ln,rms", "--seeds", "4", "-j", "2",
            "-o", str(out)]
    env = {**os.environ, HOLD_ENV: "0.4"}
    proc = subprocess.Popen([str(LNEXP), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    sweep_json = None
    while time.monotonic() < deadline:  # wait until some, not all, trials are done
        found = list(out.glob("tiny-sweep/*/sweep.json"))
        if found:
            sweep_json = found[0]
            try:  # trial events are in the journal until the sweep ends: load folds them
                if SweepFolder.load(sweep_json.parent).counts()["completed"] >= 2:
                    break
            except (ValueError, RunFolderError):
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert sweep_json is not None
    sweep_dir = sweep_json.parent
    before = _read(sweep_dir)
    assert before["status"] == "interrupted"
    done = {t["index"]: t for t in before["trials"] if t["status"] == "completed"}
    assert 2 <= len(done) < 8
    assert any(t["status"] == "interrupted" for t in before["trials"])
    started = {i: json.loads((sweep_dir / t["run_dir"] / "run.json").read_text())["started"]
               for i, t in done.items()}

    # a changed definition is refused, with the diff
    res = _invoke(*args[:2], "--grid", "model.norm=ln,bn", *args[4:], "--resume",
                  str(sweep_dir))
    assert res.exit_code == 2
    assert "definition changed" in res.stderr and "+" in res.stderr and "bn" in res.stderr

    res = _invoke("sweep", "--resume", str(sweep_dir))
    assert res.exit_code == 0, res.output
    assert f"{len(done)} of 8 trials already completed" in res.stderr
    after = _read(sweep_dir)
    assert after["status"] == "completed" and after["counts"]["completed"] == 8
    for i, t in done.items():  # completed trials were not run again
        assert after["trials"][i]["attempts"] == 1
        run = json.loads((sweep_dir / t["run_dir"] / "run.json").read_text())
        assert run["started"] == started[i]
    assert max(t["attempts"] for t in after["trials"]) == 2
    assert len(after["sessions"]) == 2
    assert sum(1 for _ in sweep_dir.glob("t*/metrics.json")) == 8


@pytest.mark.slow  # starts real processes
def test_sweep_block_in_yaml_and_parent_never_imports_torch(tmp_path: Path) -> None:
    path = tmp_path / "block.yaml"
    path.write_text(SMALL + "sweep:\n  grid:\n    model.norm: [ln, rms]\n  seeds: 2\n")
    assert _invoke("validate", str(path)).exit_code == 0  # run/validate set the block aside
    code = (
        "import sys\n"
        "from lnexp.cli import app\n"
        f"try:\n    app(['sweep', {str(path)!r}, '-j', '2', '-q', '-o', {str(tmp_path)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'the parent imported torch'\n"
        "print('no torch')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "no torch" in res.stdout
    (sweep_dir,) = (tmp_path / "tiny-sweep").iterdir()
    assert _read(sweep_dir)["counts"]["completed"] == 4


@pytest.mark.slow  # starts real processes
def test_metric_option_and_figure(cfg: Path, tmp_path: Path) -> None:
    cfg.write_text(SMALL.replace("figures: false", "figures: false\n  dpi: 30"))
    res = _invoke("sweep", str(cfg), "--grid", "model.norm=bn,ln", "--grid",
                  "data.n_samples=2,4", "--metric", "post_norm.global.rms.max", "-j", "2",
                  "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    (sweep_dir,) = (tmp_path / "out" / "tiny-sweep").iterdir()
    assert (sweep_dir / "summary.png").stat().st_size > 1000
    header = (sweep_dir / "summary.csv").read_text().splitlines()[0]
    assert header.endswith(",".join(f"post_norm.global.rms.max.{s}" for s in
                                    ("mean", "std", "n", "median", "min", "max")))
    bad = _invoke("sweep", str(cfg), "--grid", "seed=0:2", "--metric", "post_norm.bogus.max")
    assert bad.exit_code == 2 and "unknown metric" in bad.stderr


@pytest.mark.slow  # starts real processes
def test_resume_reruns_a_completed_trial_whose_resolved_config_changed(cfg: Path,
                                                                       tmp_path: Path) -> None:

    res = _invoke("sweep", str(cfg), "--grid", "model.norm=ln", "-j", "1", "--no-figure",
                  "-o", str(tmp_path / "o"), "--json")
    assert res.exit_code == 0, res.output
    folder = SweepFolder.load(Path(json.loads(res.stdout)["sweep_dir"]))
    (entry,) = folder.trials
    assert folder.trial_done(entry, entry["hash"], 1)
    assert not folder.trial_done(entry, "0" * 16, 1)  # e.g. a default changed in a new lnexp
    assert not folder.trial_done(entry, entry["hash"], 2)  # computed on another thread count


def test_summary_has_median_and_range_over_seeds():
    from lnexp.sweep.summary import mean_std

    s = mean_std([3.0, 1.0, 100.0, 2.0, float("nan")])
    assert (s.n, s.median, s.min, s.max) == (4, 2.5, 1.0, 100.0)
    assert mean_std([5.0]).median == 5.0 and mean_std([]).median is None


def test_dry_run_refuses_expectations_no_trial_can_produce(cfg: Path, tmp_path: Path) -> None:
    """validate = run, trial by trial: a layers.* expectation at depth 1 is refused before
    anything runs (exit 2), naming each trial; the trial at depth 3 is fine."""
    out = tmp_path / "out"
    cfg.write_text(SMALL + "expect:\n  layers.grad_norm.max: {le: 100}\n")
    res = _invoke("sweep", str(cfg), "--grid", "model.depth=1,3", "--dry-run", "-o", str(out))
    assert res.exit_code == 2, res.output
    assert "trial 0 (model.depth=1): expect.layers.grad_norm.max" in res.output
    assert "trial 1" not in res.output and "1 of 2 trials are invalid" in res.output
    assert not out.exists()
