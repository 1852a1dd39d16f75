"""train.log_every (lnexp/diagnostics.py): per-block diagnostics over training, checked against
an independent float64 computation, for every training task, to history.csv / metrics.json and
the figure (read back)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lnexp.config import ModelConfig
from lnexp.diagnostics import Logger, log_step
from lnexp.models import build_model
from lnexp.models.transformer import LastToken
from tests.conftest import run_json


def test_log_steps_are_the_first_every_kth_and_last():
    assert [s for s in range(1, 13) if log_step(s, 5, 12)] == [1, 5, 10, 12]
    assert not any(log_step(s, None, 12) for s in range(1, 13))


def _reference(out: torch.Tensor) -> dict[str, float]:
    x = out.detach().double().numpy().ravel()
    a = np.abs(x)
    c = x - x.mean()
    return {"residual_rms": float(np.sqrt(np.mean(x ** 2))), "max_abs": float(a.max()),
            "max_over_median": float(a.max() / np.median(a)),
            "excess_kurtosis": float(np.mean(c ** 4) / np.mean(c ** 2) ** 2 - 3)}


@pytest.mark.parametrize("block", ["linear", "transformer"])
def test_logger_matches_an_independent_computation(block):
    """One logged step of a 3-block model: every statistic from the block outputs of the same
    forward (model.trace) and the gradients of the same backward, in numpy float64."""
    kw = ({"block": "transformer", "heads": 2, "placement": "pre_residual"} if block
          == "transformer" else {"activation": "relu", "placement": "pre_residual"})
    cfg = ModelConfig(in_features=8, out_features=8, depth=3, **kw)
    torch.manual_seed(3)
    model = build_model(cfg, "sequence" if block == "transformer" else "features").double()
    head = nn.Linear(8, 1).double()
    net = nn.Sequential(model, LastToken(), head) if block == "transformer" else \
        nn.Sequential(model, head)
    x = torch.randn(6, 5, 8, dtype=torch.float64) if block == "transformer" else \
        torch.randn(7, 8, dtype=torch.float64)
    logger = Logger(net)
    with logger.forward(1):
        loss = net(x).square().mean()
    loss.backward()
    logger.gradients()
    d = logger.diag
    assert d.steps == [1] and d.blocks == ["block1", "block2", "block3"]
    outs = model.trace(x).blocks
    for j, out in enumerate(outs):
        ref = _reference(out)
        for key, want in ref.items():
            assert d.values[key][0][j] == pytest.approx(want, rel=1e-9), (key, j)
        lins = model.blocks[j].linears()
        grad = np.sqrt(sum(float(m.weight.grad.double().square().sum()) for m in lins))
        assert d.values["grad_norm"][0][j] == pytest.approx(grad, rel=1e-9)
        where = d.max_position[0][j]
        assert abs(float(out.detach()[where])) == pytest.approx(ref["max_abs"], rel=1e-12)
    if block == "transformer":
        attn = model.blocks[0].attn
        h = model.blocks[0].norm1(x)
        q = attn.q(h).reshape(6, 5, 2, 4).transpose(1, 2)
        k = attn.k(h).reshape(6, 5, 2, 4).transpose(1, 2)
        top = float((q @ k.transpose(-1, -2) / 2.0).detach().abs().max())
        assert d.values["attn_logit_max"][0][0] == pytest.approx(top, rel=1e-9)
    else:
        assert "attn_logit_max" not in d.values


TASKS = {
    "mlp": ["model.depth=3", "model.activation=relu"],
    "conv": ["data.layout=image", "train.task=digits", "model.in_features=1",
             "model.out_features=4", "model.hidden=4", "model.depth=2", "data.n_samples=8",
             "train.n_train=64", "train.n_heldout=32"],
    "transformer": ["data.layout=sequence", "data.tokens=4", "model.block=transformer",
                    "model.in_features=8", "model.out_features=8", "model.heads=2",
                    "model.placement=pre_residual", "model.depth=2", "train.task=retrieve"],
}


@pytest.mark.parametrize("kind", [*TASKS, "charlm"])
def test_log_every_for_every_task(invoke, tmp_path, kind):
    if kind == "charlm":
        config = tmp_path / "c.yaml"
        config.write_text(
            "data: {layout: sequence, tokens: 8, source: text, n_samples: 4}\n"
            "model: {block: transformer, in_features: 8, out_features: 8, depth: 2, heads: 2,"
            " placement: pre_residual}\n"
            "train: {task: charlm, steps: 12, batch_size: 4, n_train: 64, n_heldout: 8}\n")
        sets = []
    else:
        config = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"
        sets = [*TASKS[kind], "train.steps=12", "train.batch_size=8"]
    doc = run_json(invoke, tmp_path, config, *sets, "train.log_every=5", figures=True)
    d = doc["training"]["diagnostics"]
    assert d["steps"] == [1, 5, 10, 12]
    n_blocks = len(d["blocks"])
    assert n_blocks >= 2
    want = {"residual_rms", "max_abs", "max_over_median", "excess_kurtosis", "grad_norm"}
    assert want <= set(d)
    assert ("attn_logit_max" in d) == (kind in ("transformer", "charlm"))
    assert all(len(row) == n_blocks for row in d["residual_rms"])
    assert all(v is not None and v > 0 for row in d["grad_norm"] for v in row)
    folder = Path(doc["run_dir"])
    with open(folder / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    col = "residual_rms.block1"
    logged = [int(r["step"]) for r in rows if r[col]]
    assert logged == [1, 5, 10, 12]
    assert float(rows[5][col]) == pytest.approx(d["residual_rms"][1][0])
    import matplotlib.image as mpimg

    png = mpimg.imread(folder / "figures" / "training_diagnostics.png")
    assert png.shape[0] > 500 and png.shape[1] > 1000
    assert png[..., :3].std() > 0.05  # drawn, not blank


def test_without_log_every_history_has_no_diagnostics(invoke, tmp_path):
    config = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"
    doc = run_json(invoke, tmp_path, config, *TASKS["mlp"], "train.steps=3")
    assert "diagnostics" not in doc["training"]
    header = (Path(doc["run_dir"]) / "history.csv").read_text().splitlines()[0]
    assert "residual_rms" not in header
    assert not (Path(doc["run_dir"]) / "figures" / "training_diagnostics.png").exists()
