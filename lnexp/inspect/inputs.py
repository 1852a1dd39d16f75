"""What `lnexp inspect` feeds the model: text through its tokenizer, or tensors (`--random
SHAPE`, a .npy/.pt file, the digits images). Inputs are produced batch by batch, so 10,000
sentences never sit tokenized in memory at once."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lnexp.inspect.errors import InspectError, MissingExtraError
from lnexp.inspect.sources import Batch, InputSpec, Source  # re-exported: the input types

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
MAX_SEED = 2**63 - 1  # --seed, as the config's seed (torch.manual_seed overflows above 2**64)


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


def _check_array(data: Any) -> None:
    """Only what inspect feeds a model batch by batch: a numeric, native-byte-order array."""
    if data.dtype.kind not in "fiub":
        raise ValueError(f"dtype {data.dtype} is not numeric")
    if not data.dtype.isnative:
        raise ValueError(f"dtype {data.dtype.str} is big-endian; save it little-endian "
                         f"(array.astype('{data.dtype.newbyteorder('=').str}'))")


def _check_tensor(data: torch.Tensor) -> None:
    """A dense (strided), unquantized, real-valued tensor: sparse and quantized tensors cannot
    be sliced into batches and turned into float32 inputs."""
    if data.layout != torch.strided:
        raise ValueError(f"a {str(data.layout).removeprefix('torch.')} tensor; save a dense "
                         f"one (tensor.to_dense())")
    if data.is_quantized:
        raise ValueError(f"a quantized {str(data.dtype).removeprefix('torch.')} tensor; save "
                         f"a dense float one (tensor.dequantize())")
    if data.is_complex() or (not data.dtype.is_floating_point and data.dtype not in (
            torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)):
        raise ValueError(f"dtype {str(data.dtype).removeprefix('torch.')} is not real-valued")


def read_tensor_file(path: Path) -> Any:
    """A .npy (memory-mapped) or .pt file holding one tensor with a leading input axis."""
    if not path.is_file():
        raise InspectError(f"tensor file {path}: not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            import numpy as np

            data: Any = np.load(path, mmap_mode="r", allow_pickle=False)
            _check_array(data)
        elif suffix in (".pt", ".pth"):
            with warnings.catch_warnings():  # torch warns while loading quantized tensors
                warnings.simplefilter("ignore")
                data = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(data, dict) and len(data) == 1:
                data = next(iter(data.values()))
            if not isinstance(data, torch.Tensor):
                raise ValueError(f"holds a {type(data).__name__}, not one tensor")
            _check_tensor(data)
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


MAX_LINE_BYTES = 64 * 1024  # a longer line is cut here (MAX_TOKENS tokens fit in far less)


def _open_regular(path: Path) -> Any:
    """Open a regular file for reading in binary; a FIFO, device or folder is refused before
    anything is read (O_NONBLOCK: opening a FIFO with no writer would otherwise hang)."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InspectError(f"text file {path}: cannot read it "
                           f"({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "not a regular file")
        raise InspectError(f"text file {path}: {kind}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_text_file(path: Path) -> None:
    """Refuse a text file that cannot be read as one (missing, a FIFO, a device, a folder)."""
    _open_regular(path).close()


def _decode(raw: bytes, path: Path, number: int, cut: bool) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(raw) - 3:  # the cut fell inside a character
            return raw[:exc.start].decode("utf-8", errors="replace")
        raise InspectError(f"text file {path}: line {number} is not UTF-8 ({exc.reason} at "
                           f"byte {exc.start})") from None


def read_lines(path: Path, limit: int | None = None) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped, streamed: reading stops after
    `limit` of them, and a line longer than MAX_LINE_BYTES is cut there (the rest of it is
    skipped without being held), so memory is bounded by `limit` x MAX_LINE_BYTES."""
    lines: list[str] = []
    with _open_regular(path) as f:
        number = 0
        while limit is None or len(lines) < limit:
            raw = f.readline(MAX_LINE_BYTES)
            if not raw:
                break
            number += 1
            cut = not raw.endswith(b"\n") and len(raw) == MAX_LINE_BYTES
            while cut:  # skip the rest of an over-long line in bounded chunks
                rest = f.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            text = _decode(raw, path, number, cut).strip()
            if text:
                lines.append(text)
    return lines


def resolve(spec: InputSpec, tokenizer: Any | None, model_name: str,
            media: Any = None) -> Source:
    """Turn the command line's inputs into a Source that fits the model (`media`: a packaged
    CNN's input preparation, see lnexp.inspect.media)."""
    text_given = bool(spec.texts) or spec.text_file is not None
    tensor_kinds = [k for k, on in (("--random", spec.random is not None),
                                    ("a tensor file", spec.tensor_file is not None),
                                    ("--digits", spec.digits)) if on]
    if len(tensor_kinds) + text_given > 1:
        given = (["--text/--text-file"] if text_given else []) + tensor_kinds
        raise InspectError(f"give one kind of input, not {' and '.join(given)}")
    if media is not None or spec.images or spec.tone is not None or spec.audio is not None:
        from lnexp.inspect import media as media_inputs

        others = (["--text/--text-file"] if text_given else []) + tensor_kinds
        source = media_inputs.resolve(spec, media, model_name, others)
        if source is not None:
            return source
    if tokenizer is not None:
        if tensor_kinds:
            raise InspectError(f"model {model_name} takes text: use --text or --text-file "
                               f"(not {tensor_kinds[0]})")
        texts = list(spec.texts)
        if spec.text_file is not None:
            left = None if not spec.limit else max(spec.limit - len(texts), 0)
            texts += read_lines(spec.text_file, left) if left != 0 else []
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
        if not 0 <= spec.seed <= MAX_SEED:
            raise InspectError(f"--seed {spec.seed}: give a whole number from 0 to {MAX_SEED} "
                               f"(2**63 - 1, as the config's seed)")
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
