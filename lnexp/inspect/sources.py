"""The input types of `lnexp inspect` (what was asked for, a batch, a source of batches),
shared by inputs.py (text and tensors) and media.py (images and audio) without a cycle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class InputSpec:
    """The inputs asked for on the command line; at most one kind (texts + text_file are one)."""

    texts: tuple[str, ...] = ()
    text_file: Path | None = None
    random: str | None = None  # "8,3,32,32": 8 inputs of shape (3, 32, 32)
    tensor_file: Path | None = None  # .npy or .pt; dim 0 indexes the inputs
    digits: bool = False  # scikit-learn's 8x8 digits, (N, 1, 8, 8) in [0, 1]
    limit: int | None = None  # use only the first N inputs
    seed: int = 0  # for --random
    images: tuple[Path, ...] = ()  # --image, for the packaged image CNNs (lnexp.inspect.media)
    tone: float | None = None  # --tone HZ: a sine for crepe_tiny
    audio: Path | None = None  # --audio FILE.wav


@dataclass
class Batch:
    """One forward call's inputs and how their rows line up with the inputs."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    offset: int  # index of the batch's first input
    size: int
    mask: torch.Tensor | None = None  # (B, T) bool, True for real tokens (text only)
    token_ids: torch.Tensor | None = None  # (B, T)
    extra: dict[str, Any] = field(default_factory=dict)


class Source:
    """A sequence of inputs, produced in batches."""

    kind = "tensor"
    count = 0
    description = ""

    def batches(self, batch_size: int) -> Iterator[Batch]:
        raise NotImplementedError
