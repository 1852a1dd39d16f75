"""lnexp.sweep.workers: a trial in-process never raises, and its folder tells what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lnexp.config import from_mapping, to_dict
from lnexp.sweep import workers

SMALL = {"data": {"n_samples": 8}, "model": {"in_features": 6, "out_features": 4},
         "output": {"figures": False}}


def test_a_trial_writes_a_completed_run_folder(tmp_path: Path) -> None:
    task = workers.Task(0, to_dict(from_mapping(SMALL)), str(tmp_path / "t000"), ["lnexp"])
    outcome = workers.run_trial(task)
    assert outcome["status"] == "completed" and outcome["error"] is None
    assert json.loads((tmp_path / "t000" / "run.json").read_text())["status"] == "completed"


def test_a_trial_not_defined_here_fails_without_raising(tmp_path: Path) -> None:
    cfg = to_dict(from_mapping({**SMALL, "data": {"n_samples": 1}, "model": {"norm": "bn"}}))
    outcome = workers.run_trial(workers.Task(3, cfg, str(tmp_path / "t003"), ["lnexp"]))
    assert outcome["index"] == 3 and outcome["status"] == "failed"
    assert "batch of 1" in outcome["error"]
    assert json.loads((tmp_path / "t003" / "run.json").read_text())["status"] == "failed"


@pytest.mark.slow  # starts real processes
def test_execute_reports_every_trial_through_the_callbacks(tmp_path: Path) -> None:
    tasks = [workers.Task(i, to_dict(from_mapping(SMALL)), str(tmp_path / f"t{i}"), ["x"])
             for i in range(3)]
    started, done = [], []
    workers.execute(tasks, 2, figures=False, on_start=lambda t: started.append(t.index),
                    on_done=lambda t, o: done.append((t.index, o["status"])))
    assert sorted(started) == [0, 1, 2]
    assert sorted(done) == [(0, "completed"), (1, "completed"), (2, "completed")]
