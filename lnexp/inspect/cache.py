"""The model cache of `lnexp inspect`: a GGUF model's dequantized weights, saved once.

Where: `$LNEXP_CACHE_DIR`, else `$XDG_CACHE_HOME/lnexp`, else `~/.cache/lnexp`. Layout:

    models/<model>-<sha256 of the GGUF, 16 hex>/   config.json, model.safetensors, tokenizer
                                                   files, manifest.json (written last)
    gguf/                                          GGUF files lnexp assembled (gemma3)
    hashes.json                                    sha256 of GGUF files by path, size, mtime

A folder is written under a temporary name (`.tmp-<pid>-...`), its manifest (every file's size
and sha256) last, then renamed into place: a killed process or a full disk leaves at most a
temporary folder, removed by the next load once its process is gone. A folder whose manifest
is missing or unreadable, or whose files differ from it in size or sha256, is not used: it is
removed and rebuilt from the GGUF.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT = 1


def cache_dir() -> Path:
    if os.environ.get("LNEXP_CACHE_DIR"):
        return Path(os.environ["LNEXP_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lnexp"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: Path, root: Path) -> str:
    """The sha256 of `path`, hashed once and remembered by (path, size, mtime) in hashes.json
    (a cache that cannot be written is only a cost: the hash is then computed each time)."""
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    index_path = root / "hashes.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    key = str(path.resolve())
    known = index.get(key)
    if isinstance(known, dict) and {k: known.get(k) for k in stamp} == stamp \
            and isinstance(known.get("sha256"), str):
        return known["sha256"]
    digest = sha256_file(path)
    index[key] = {**stamp, "sha256": digest}
    try:
        root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(index_path, index)
    except OSError:
        pass
    return digest


def folder_for(root: Path, name: str, key: str) -> Path:
    return root / "models" / f"{name}-{key[:16]}"


def discard(folder: Path) -> None:
    """Remove a cache folder: renamed away first, so no reader sees it half removed."""
    trash = folder.with_name(f".tmp-{os.getpid()}-trash-{folder.name}")
    try:
        os.replace(folder, trash)
    except OSError:
        trash = folder
    shutil.rmtree(trash, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours
        return True
    return True


def clean_stale(root: Path) -> None:
    """Remove temporary folders and files left by processes that are gone (killed mid-write)."""
    for parent in (root / "models", root / "gguf", root):
        if not parent.is_dir():
            continue
        for p in parent.glob(".tmp-*"):
            pid = p.name.split("-")[1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def verify(folder: Path, key: str) -> bool:
    """True when `folder` holds a complete cache for GGUF `key` (manifest, sizes, sha256)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != FORMAT or manifest.get("gguf_sha256") != key \
                or not isinstance(files, dict) or "model.safetensors" not in files:
            return False
        for fname, meta in files.items():
            p = folder / fname
            if Path(fname).name != fname or p.stat().st_size != meta["size"]:
                return False
        return all(sha256_file(folder / f) == meta["sha256"] for f, meta in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def lookup(root: Path, name: str, key: str) -> Path | None:
    """The verified cache folder of model `name` for GGUF `key`; a broken one is removed."""
    clean_stale(root)
    folder = folder_for(root, name, key)
    if not folder.exists():
        return None
    if verify(folder, key):
        return folder
    discard(folder)
    return None


def _save_weights(model: Any, path: Path) -> None:
    """The state dict as safetensors; a tied weight is saved once (transformers ties it back
    when it loads the folder)."""
    from safetensors.torch import save_file

    state, seen = {}, set()
    for k, v in model.state_dict().items():
        if v.data_ptr() in seen:  # lm_head.weight tied to the embeddings
            continue
        seen.add(v.data_ptr())
        state[k] = v.detach().contiguous()
    save_file(state, str(path), metadata={"format": "pt"})


def store(root: Path, name: str, key: str, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Write the model's cache folder atomically. Never raises for a disk problem: the
    measurement goes on and the returned status says why nothing was cached."""
    folder = folder_for(root, name, key)
    tmp = folder.with_name(f".tmp-{os.getpid()}-{folder.name}")
    start = time.perf_counter()
    try:
        tmp.mkdir(parents=True, exist_ok=False)
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the cache holds plain float32 weights
        (tmp / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        _save_weights(model, tmp / "model.safetensors")
        tokenizer.save_pretrained(str(tmp))
        files = {}
        for p in sorted(tmp.iterdir()):
            with p.open("rb") as f:
                os.fsync(f.fileno())
            files[p.name] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
        _write_json_atomic(tmp / MANIFEST, {"format": FORMAT, "model": name, "gguf_sha256": key,
                                            "files": files, "written": time.time()})
        if folder.exists():  # another process cached it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except Exception as exc:  # a full disk: OSError, or safetensors' own error class
        shutil.rmtree(tmp, ignore_errors=True)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"status": "not written", "reason": f"{type(exc).__name__}: {text}"}
    size = sum(p.stat().st_size for p in folder.iterdir())
    return {"status": "written", "path": str(folder), "bytes": size,
            "write_seconds": round(time.perf_counter() - start, 3)}
