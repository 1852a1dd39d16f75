"""What `lnexp inspect` feeds the model: text through its tokenizer, or tensors (`--random
SHAPE`, a .npy/.pt file, the digits images). Inputs are produced batch by batch, so 10,000
sentences never sit tokenized in memory at once."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lnexp.inspect.errors import InspectError, MissingExtraError

# The default text inputs: short, varied English sentences (the measurements used 8).
BUILTIN_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Layer normalization rescales each token's features to zero mean and unit variance.",
    "A cat sat on the mat.",
    "Paris is the capital of France.",
    "How many parameters does this model have?",
    "Stock markets fell sharply on Monday after the announcement.",
    "She played the violin at the concert last night.",
    "Quantizing activations to eight bits saves memory.",
)
MAX_TOKENS = 256  # text is truncated to this many tokens per input


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


class TextSource(Source):
    kind = "text"

    def __init__(self, texts: list[str], tokenizer: Any, description: str,
                 max_tokens: int = MAX_TOKENS):
        self.texts = texts
        self.tokenizer = tokenizer
        self.count = len(texts)
        self.description = description
        self.max_tokens = max_tokens

    def batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.count, batch_size):
            chunk = self.texts[start:start + batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True,
                                 max_length=self.max_tokens, return_tensors="pt")
            kwargs = dict(enc)
            mask = kwargs["attention_mask"].bool() if "attention_mask" in kwargs \
                else torch.ones_like(kwargs["input_ids"], dtype=torch.bool)
            yield Batch(args=(), kwargs=kwargs, offset=start, size=len(chunk), mask=mask,
                        token_ids=kwargs["input_ids"])


class TensorSource(Source):
    def __init__(self, data: Any, description: str):
        """`data`: a torch.Tensor or a numpy array (memory-mapped for .npy); dim 0 indexes the
        inputs. Converted to float32 one batch at a time."""
        self.data = data
        self.count = int(data.shape[0])
        self.description = description
        self.shape = tuple(int(s) for s in data.shape[1:])

    def batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.count, batch_size):
            x = self.data[start:start + batch_size]
            x = torch.as_tensor(x.copy() if hasattr(x, "flags") else x).float()
            yield Batch(args=(x,), kwargs={}, offset=start, size=x.shape[0])


class RandomSource(Source):
    def __init__(self, shape: tuple[int, ...], seed: int):
        self.count = shape[0]
        self.shape = shape[1:]
        self.seed = seed
        self.description = f"random normal {'x'.join(map(str, shape))} (seed {seed})"

    def batches(self, batch_size: int) -> Iterator[Batch]:
        # One generator drawn batch after batch: the same seed gives the same inputs.
        gen = torch.Generator().manual_seed(self.seed)
        for start in range(0, self.count, batch_size):
            n = min(batch_size, self.count - start)
            yield Batch(args=(torch.randn(n, *self.shape, generator=gen),), kwargs={},
                        offset=start, size=n)


def parse_shape(text: str) -> tuple[int, ...]:
    """'8,3,32,32' or '8x3x32x32' -> (8, 3, 32, 32): the first number is the input count."""
    parts = [p for p in re.split(r"[,x× ]+", text.strip().strip("()[]")) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise InspectError(f"--random {text!r}: give the shape as positive integers, e.g. "
                           f"8,3,32,32 (8 inputs of shape 3x32x32)")
    if math.prod(shape) > 2**31:
        raise InspectError(f"--random {text!r}: {math.prod(shape):,} values is too many")
    return shape


def read_tensor_file(path: Path) -> Any:
    """A .npy (memory-mapped) or .pt file holding one tensor with a leading input axis."""
    if not path.is_file():
        raise InspectError(f"tensor file {path}: not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            import numpy as np

            data: Any = np.load(path, mmap_mode="r", allow_pickle=False)
            if data.dtype.kind not in "fiub":
                raise ValueError(f"dtype {data.dtype} is not numeric")
        elif suffix in (".pt", ".pth"):
            data = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(data, dict) and len(data) == 1:
                data = next(iter(data.values()))
            if not isinstance(data, torch.Tensor):
                raise ValueError(f"holds a {type(data).__name__}, not one tensor")
        else:
            raise ValueError("use a .npy or .pt file")
    except Exception as exc:  # any reader error: one line naming the file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InspectError(f"tensor file {path}: cannot read it ({msg})") from None
    if data.ndim < 1 or data.shape[0] == 0:
        raise InspectError(f"tensor file {path}: shape {tuple(data.shape)} has no inputs "
                           f"along dim 0")
    return data


def _digits() -> torch.Tensor:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingExtraError("--digits", "data", "scikit-learn") from None
    images = load_digits().images  # (1797, 8, 8), values 0..16
    return torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InspectError(f"text file {path}: cannot read it "
                           f"({getattr(exc, 'strerror', None) or exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def resolve(spec: InputSpec, tokenizer: Any | None, model_name: str) -> Source:
    """Turn the command line's inputs into a Source that fits the model."""
    text_given = bool(spec.texts) or spec.text_file is not None
    tensor_kinds = [k for k, on in (("--random", spec.random is not None),
                                    ("a tensor file", spec.tensor_file is not None),
                                    ("--digits", spec.digits)) if on]
    if len(tensor_kinds) + text_given > 1:
        given = (["--text/--text-file"] if text_given else []) + tensor_kinds
        raise InspectError(f"give one kind of input, not {' and '.join(given)}")
    if tokenizer is not None:
        if tensor_kinds:
            raise InspectError(f"model {model_name} takes text: use --text or --text-file "
                               f"(not {tensor_kinds[0]})")
        texts = list(spec.texts)
        if spec.text_file is not None:
            texts += _read_lines(spec.text_file)
        desc = ("built-in sentences" if not text_given else
                f"{spec.text_file}" if spec.text_file and not spec.texts else "given text")
        if not text_given:
            texts = list(BUILTIN_TEXTS)
        texts = texts[:spec.limit] if spec.limit else texts
        if not texts:
            raise InspectError(f"no text to feed the model (is {spec.text_file} empty?)")
        return TextSource(texts, tokenizer, desc)
    if text_given:
        raise InspectError(f"model {model_name} has no tokenizer: give tensors with "
                           f"--random SHAPE, --digits or a .npy/.pt file")
    if spec.random is not None:
        shape = parse_shape(spec.random)
        if spec.limit:
            shape = (min(shape[0], spec.limit), *shape[1:])
        return RandomSource(shape, spec.seed)
    if spec.tensor_file is not None:
        data = read_tensor_file(spec.tensor_file)
        if spec.limit:
            data = data[:spec.limit]
        return TensorSource(data, f"{spec.tensor_file} {tuple(data.shape)}")
    if spec.digits:
        data = _digits()
        if spec.limit:
            data = data[:spec.limit]
        return TensorSource(data, f"digits {tuple(data.shape)}")
    raise InspectError(f"model {model_name} takes tensors: give --random SHAPE (e.g. "
                       f"--random 8,3,32,32), --digits, or a .npy/.pt file")
