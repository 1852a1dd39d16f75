"""Options of `lnexp inspect` (no torch import: the CLI builds this before loading anything)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class InspectOptions:
    batch_size: int = 32  # inputs per forward call; also the batch BatchNorm's train mode sees
    top_k: int = 5  # outlier dims reported per stage, and weight/bias extremes
    carriers: int = 3  # tokens listed per outlier dim (largest |x| there)
    largest_tokens: int = 5  # tokens listed with the largest per-token variance
    dim_limit: int = 8192  # per-dim lists in inspect.json only up to this many dims
    batchnorm_check: bool = True  # BatchNorm layers: train-mode vs eval-mode output
    model_cache: bool = True  # GGUF language models: read and write the model cache

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
