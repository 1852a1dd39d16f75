"""Training: determinism, history.csv, the eval/train-mode evaluation and Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lnexp import core
from lnexp.config import from_mapping, load_config
from lnexp.experiment import run
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
