"""Training: determinism, history.csv, the eval/train-mode evaluation and Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lnexp import core, training
from lnexp.config import from_mapping, load_config
from lnexp.experiment import run
from lnexp.figures import FIGURES
from lnexp.figures.training import _smooth
from tests.conftest import CONFIGS, run_json

SMALL = ["train.steps=12", "train.eval_every=5", "train.n_train=64", "train.n_heldout=32",
         "train.batch_size=8"]


def test_two_runs_write_identical_history(invoke, tmp_path):
    a = run_json(invoke, tmp_path, CONFIGS / "batch_size.yaml", *SMALL)
    b = run_json(invoke, tmp_path, CONFIGS / "batch_size.yaml", *SMALL)
    ha = (Path(a["run_dir"]) / "history.csv").read_text()
    assert ha == (Path(b["run_dir"]) / "history.csv").read_text()
    rows = ha.splitlines()
    assert rows[0].startswith("step,loss,heldout_loss_eval_mode,heldout_acc_eval_mode,")
    assert "grad_norm.block1" in rows[0] and "update_ratio.head" in rows[0]
    assert len(rows) == 1 + 13  # header, step 0 (evaluation only), steps 1..12
    evals = [int(r.split(",")[0]) for r in rows[1:] if r.split(",")[2]]
    assert evals == [0, 5, 10, 12]
    t = a["training"]
    assert t["steps_done"] == 12 and t["interrupted"] is False
    assert [e["step"] for e in t["evals"]] == evals
    assert len(t["grad_norm_mean"]) == len(t["layers"]) == 4  # 3 blocks + head


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
def test_training_run_writes_its_figures_and_summary(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "batch_size.yaml"), "-o", str(tmp_path),
                    "--set", "output.figures=true", *[x for s in SMALL for x in ("--set", s)])
    assert result.exit_code == 0, result.output
    assert "Training: clusters, adam lr 0.001, batch 8, 12/12 steps" in result.stdout
    assert "training step 12/12" in result.stderr  # plain progress lines off a terminal
    (run_dir,) = (tmp_path / "batch_size").iterdir()
    assert {p.name for p in (run_dir / "figures").iterdir()} == {
        "overview.png", "heatmap.png", "layers.png", "training.png"}


def test_eval_mode_and_train_mode_agree_without_batchnorm():
    cfg = from_mapping({"model": {"norm": "ln", "depth": 2}},
                       [*SMALL, "train.task=teacher", "train.outputs=2"])
    tr = run(cfg).training
    for e in tr.evals:
        assert e.loss_eval_mode == pytest.approx(e.loss_train_mode, rel=1e-5)
        assert e.acc_eval_mode is None
    bn = run(from_mapping({"model": {"norm": "bn", "depth": 2}}, SMALL)).training
    assert any(e.loss_eval_mode != pytest.approx(e.loss_train_mode, rel=1e-3) for e in bn.evals)


def test_ctrl_c_keeps_what_was_recorded_and_marks_the_run_interrupted(tmp_path):
    cfg = load_config(CONFIGS / "batch_size.yaml", [*SMALL, "output.figures=false"])

    def stop_at_5(step: int, total: int, loss: float) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        core.run(cfg, tmp_path, ["lnexp"], stop_at_5)
    (run_dir,) = (tmp_path / "batch_size").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    doc = json.loads((run_dir / "metrics.json").read_text())
    assert doc["training"]["interrupted"] is True and doc["training"]["steps_done"] == 5
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 6


def test_bn_cannot_train_with_batches_of_one(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "batch_size.yaml"), "-o", str(tmp_path),
                    "--set", "train.batch_size=1")
    assert result.exit_code == 2 and "train.batch_size: 1" in result.stderr


def test_linear_warmup_raises_the_learning_rate_step_by_step(monkeypatch):
    """Step k <= warmup_steps uses lr * k / warmup_steps (read from Adam's param group)."""
    import torch

    seen = []
    step = torch.optim.Adam.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    cfg = load_config(CONFIGS / "batch_size.yaml",
                      [*SMALL, "train.warmup_steps=4", "train.lr=0.01", "model.norm=ln"])
    run(cfg)
    assert seen[:6] == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_warmup_longer_than_training_is_a_config_error():
    from lnexp.errors import ConfigError

    with pytest.raises(ConfigError, match="warmup_steps"):
        from_mapping({"train": {"steps": 10, "warmup_steps": 11}})


@pytest.mark.parametrize("loss, grads, why", [
    (float("nan"), [1.0], "loss non-finite from step 7"),
    (float("inf"), [1.0], "loss non-finite from step 7"),
    (1.5, [1.0, float("inf")], "gradient non-finite from step 7"),
    (1401.0, [1.0], "loss above 1000x its first value (1.4) from step 7"),
    (1399.0, [1.0], None),
    (0.5, [0.0], None),
])
def test_divergence_definition(loss, grads, why):
    assert training.divergence(7, loss, 1.4, grads) == why


SMALL_TRAIN = {"seed": 0, "data": {"n_samples": 16},
               "model": {"in_features": 8, "out_features": 8, "depth": 2, "norm": "ln"},
               "train": {"n_train": 64, "n_heldout": 32, "batch_size": 16, "steps": 30,
                         "eval_every": 10}, "output": {"figures": False}}


@pytest.mark.parametrize("train, stops, why", [
    ({"optimizer": "sgd", "lr": 1e30}, True, "non-finite from step"),
    ({"task": "teacher", "optimizer": "sgd", "lr": 10.0}, None, "from step"),
    ({"optimizer": "adam", "lr": 1e-3}, False, None),
])
def test_divergence_is_recorded_in_the_result_and_metrics(tmp_path, train, stops, why):
    raw = {**SMALL_TRAIN, "train": {**SMALL_TRAIN["train"], **train}}
    outcome = core.run(from_mapping(raw), tmp_path, ["test"])
    tr = outcome.result.training
    doc = outcome.document["training"]
    assert doc["diverged"] is (why is not None) and tr.diverged is (why is not None)
    if why is None:
        assert doc["divergence"] is None and doc["diverged_step"] is None
        assert tr.steps_done == 30
        return
    assert why in doc["divergence"] and doc["diverged_step"] >= 1
    if stops:  # a non-finite loss or gradient ends training at that step
        assert tr.steps_done == doc["diverged_step"]
    assert any("Training diverged: " in line for line in outcome.explanation)


def test_training_figure_draws_what_is_finite_and_says_what_was_not():
    raw = {**SMALL_TRAIN, "train": {**SMALL_TRAIN["train"], "optimizer": "sgd", "lr": 1e30}}
    result = run(from_mapping(raw))
    fig = FIGURES["training"](result)
    texts = [t.get_text() for a in fig.axes for t in a.texts]
    assert any(t.startswith("loss non-finite from step") for t in texts) or any(
        t.startswith("gradient norm non-finite from step") for t in texts)
    assert "DIVERGED: " in fig._suptitle.get_text()


def test_smoothing_leaves_gaps_only_where_values_are_not_finite():
    y = np.array([1.0, 1.0, np.inf, 1.0, 1.0, 1.0, 1.0])
    out = _smooth(y, 2)
    assert np.isnan(out[[0, 2, 3]]).all() and (out[[1, 4, 5, 6]] == 1.0).all()
