"""Validation of the layout keys, kernel sizes, groups, instance on features and digits: every
problem is a config error (exit 2) that names the layout or the reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lnexp import data
from lnexp.config import from_mapping
from lnexp.config import sections as config_sections
from lnexp.errors import ConfigError
from lnexp.experiment import run


def problems(raw: dict) -> str:
    with pytest.raises(ConfigError) as err:
        from_mapping(raw)
    return "\n".join(err.value.problems)


def test_defaults_of_each_layout() -> None:
    img = from_mapping({"data": {"layout": "image"}})
    assert (img.data.height, img.data.width, img.model.kernel_size) == (8, 8, 3)
    assert img.dims() == {"N": 100, "C": 50, "H": 8, "W": 8}
    seq = from_mapping({"data": {"layout": "sequence"}})
    assert seq.data.tokens == 16 and seq.dims() == {"N": 100, "T": 16, "C": 50}
    feat = from_mapping({})
    assert (feat.data.height, feat.data.tokens, feat.model.kernel_size) == (None, None, None)


@pytest.mark.parametrize(("raw", "words"), [
    ({"data": {"tokens": 4}}, "data.tokens does not apply to data.layout: features"),
    ({"data": {"layout": "sequence", "height": 4}},
     "data.height does not apply to data.layout: sequence"),
    ({"data": {"layout": "image", "tokens": 4}},
     "data.tokens does not apply to data.layout: image"),
    ({"model": {"kernel_size": 3}}, "model.kernel_size does not apply to data.layout: features"),
    ({"data": {"layout": "image"}, "model": {"kernel_size": 4}}, "must be odd"),
    ({"model": {"norm": "instance"}}, "nothing to normalize over"),
    ({"data": {"layout": "image"}, "model": {"norm": "group", "groups": 3, "out_features": 32}},
     "3 groups do not divide 32 features"),
    ({"data": {"layout": "sequence", "values": [[1.0]], "n_samples": 1},
      "model": {"in_features": 1}}, "does not apply to data.layout: sequence"),
    ({"data": {"layout": "sequence"}, "train": {}}, "sequence trains on train.task: retrieve"),
    ({"train": {"task": "retrieve"}}, "retrieve draws (N, T, C) token sequences; it needs "
                                      "data.layout: sequence, not features"),
    ({"data": {"layout": "image"}, "train": {"task": "retrieve"}},
     "needs data.layout: sequence, not image"),
    ({"data": {"layout": "sequence", "tokens": 1}, "train": {"task": "retrieve"}},
     "retrieve needs at least 2 tokens"),
    ({"model": {"block": "transformer", "placement": "pre_residual", "out_features": 100}},
     "model.block: transformer is not defined on data.layout: features (self-attention mixes "
     "the T tokens"),
    ({"data": {"layout": "image"}, "model": {"block": "transformer",
                                             "placement": "pre_residual", "out_features": 100}},
     "transformer is not defined on data.layout: image"),
    ({"data": {"layout": "image"}, "model": {"block": "ffn2"}},
     "model.block: ffn2 is not defined on data.layout: image"),
    ({"data": {"length": 16}}, "data.length"),
    ({"data": {"layout": "image"}, "train": {}}, "image trains on train.task: digits"),
    ({"data": {"source": "digits", "layout": "sequence"}}, "does not apply to data.layout: "
                                                          "sequence"),
    ({"data": {"source": "digits", "n_samples": 2000}}, "more than the 1797 digits"),
    ({"data": {"source": "digits"}, "model": {"in_features": 10}}, "must be 64"),
    ({"data": {"source": "digits", "distribution": "uniform"}}, "do not apply to data.source"),
    ({"train": {"task": "digits", "outputs": 4}}, "digits has 10 classes"),
])
def test_refusals_name_the_layout_or_reason(raw: dict, words: str) -> None:
    assert words in problems(raw)


def test_instance_refusal_says_why_and_where() -> None:
    text = problems({"model": {"norm": "instance"}})
    assert "model.norm: instance is not defined on data.layout: features" in text
    assert "use data.layout: image or sequence" in text


def test_epochs_set_the_steps() -> None:
    cfg = from_mapping({"train": {"epochs": 3, "batch_size": 8, "n_train": 100}})
    assert cfg.train.steps == 3 * (100 // 8)


def test_without_scikit_learn_a_one_line_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setattr(config_sections, "digits_available", lambda: False)
    text = problems({"data": {"source": "digits"}})
    assert "pip install 'lnexp[data]'" in text and "\n" not in text


def test_cli_refuses_with_exit_2(invoke) -> None:
    res = invoke("validate", "configs/default.yaml", "--set", "model.norm=instance")
    assert res.exit_code == 2
    assert "not defined on data.layout: features" in res.stderr


def test_transformer_on_features_exits_2_naming_the_layout(invoke) -> None:
    res = invoke("validate", "configs/pre_vs_post_ln.yaml", "--set", "model.block=transformer")
    assert res.exit_code == 2
    assert "model.block: transformer is not defined on data.layout: features" in res.stderr
    assert "use data.layout: sequence" in res.stderr


@pytest.mark.parametrize("block", ["linear", "ffn2", "transformer"])
def test_blocks_on_sequences_validate(block: str) -> None:
    cfg = from_mapping({"data": {"layout": "sequence", "tokens": 4},
                        "model": {"block": block, "placement": "pre_residual",
                                  "out_features": 100},
                        "train": {"task": "retrieve"}})
    assert cfg.dims() == {"N": 100, "T": 4, "C": 100}


# --------------------------------------------------------------------------- digits

def test_digits_load_offline_and_equal_scikit_learns() -> None:
    images, labels = data.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))
    from sklearn.datasets import load_digits

    bunch = load_digits()
    np.testing.assert_array_equal(images, (bunch.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(labels, bunch.target)


@pytest.mark.parametrize(("layout", "shape"), [("image", (20, 1, 8, 8)), ("features", (20, 64))])
def test_digits_batch_is_a_seed_chosen_subset(layout: str, shape: tuple) -> None:
    cfg = from_mapping({"seed": 1, "data": {"source": "digits", "layout": layout,
                                            "n_samples": 20},
                        "model": {"out_features": 8}, "output": {"figures": False}})
    r = run(cfg)
    assert r.inputs.shape == shape
    torch.manual_seed(1)
    from lnexp.models import build_model

    build_model(cfg.model, layout)  # the draw order: model first, then the subset
    index = torch.randperm(1797)[:20]
    np.testing.assert_array_equal(r.inputs, data.digits_tensor(index, layout).numpy())
    other = run(cfg.model_copy(update={"seed": 2}))
    assert not np.array_equal(other.inputs, r.inputs)


def test_a_conv_net_trains_on_digits() -> None:
    cfg = from_mapping({"data": {"layout": "image", "n_samples": 8},
                        "model": {"norm": "bn", "out_features": 32, "hidden": 32, "depth": 3,
                                  "activation": "relu"},
                        "train": {"task": "digits", "steps": 60, "batch_size": 32,
                                  "n_train": 512, "n_heldout": 256, "eval_every": 60,
                                  "lr": 3e-3},
                        "output": {"figures": False}})
    tr = run(cfg).training
    assert tr.steps_done == 60 and not tr.diverged
    first, last = tr.evals[0], tr.evals[-1]
    assert first.acc_eval_mode < 0.2 < 0.6 < last.acc_eval_mode  # chance is 0.1
