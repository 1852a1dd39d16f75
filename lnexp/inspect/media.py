"""Images and audio for the packaged CNNs (`--image FILE`, `--tone HZ`, `--audio FILE.wav`),
prepared as each model was trained (lnexp.inspect.zoo_cnn's ImagePrep / AudioPrep), and what
the model's output says about them (`predictions` in inspect.json): the top ImageNet classes
per image, or the pitch Crepe reads from each frame.
"""

from __future__ import annotations

import importlib.util
import math
import stat
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lnexp.inspect.errors import InspectError, MissingExtraError
from lnexp.inspect.sources import Batch, InputSpec, Source
from lnexp.inspect.zoo_cnn import MODELS, AudioPrep, ImagePrep

DEFAULT_PHOTOS = ("china.jpg", "flower.jpg")  # scikit-learn's two sample images
TONE_SECONDS = 1.0
DEFAULT_TONE_HZ = 440.0
CENTS_BIN0 = 1997.3794084376191  # Crepe's bin 0, in cents above 10 Hz (torchcrepe.convert)
CENTS_PER_BIN = 20
TOP_CLASSES = 5


def _regular(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InspectError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise InspectError(f"{what} {path}: not a regular file")


def read_image(path: Path, decode: bool = True) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; anything PIL cannot read is refused in one line.
    `decode=False` reads the header only (checks that PIL knows the file)."""
    from PIL import Image, UnidentifiedImageError

    _regular(path, "image file")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")) if decode else np.zeros((0, 0, 3), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InspectError(f"image file {path}: not an image PIL can read ({first})") from None


def preprocess(rgb: np.ndarray, prep: ImagePrep) -> torch.Tensor:
    """As torchvision's Resize(resize) + CenterCrop(size) + ToTensor + Normalize."""
    from PIL import Image

    im = Image.fromarray(rgb)
    w, h = im.size
    if w <= h:
        size = (prep.resize, int(prep.resize * h / w))
    else:
        size = (int(prep.resize * w / h), prep.resize)
    resample = {"bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC}[prep.interpolation]
    im = im.resize(size, resample)
    w, h = im.size
    left, top = round((w - prep.size) / 2.0), round((h - prep.size) / 2.0)
    im = im.crop((left, top, left + prep.size, top + prep.size))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(prep.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(prep.std, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def default_photos() -> list[Path]:
    """china.jpg and flower.jpg as scikit-learn ships them (found without importing sklearn)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("the default photos (give --image FILE instead)", "data",
                                "scikit-learn")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    return [folder / name for name in DEFAULT_PHOTOS]


class ImageReadout:
    """The top ImageNet classes (softmax over the logits) of each image."""

    def __init__(self, names: list[str]):
        self.names = names
        self.rows: list[dict[str, Any]] = []

    def update(self, out: Any, batch: Batch) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch.size:
            return
        p = out.double().softmax(1)
        top = p.topk(min(TOP_CLASSES, p.shape[1]), dim=1)
        for i in range(batch.size):
            self.rows.append({"input": batch.offset + i, "file": self.names[batch.offset + i],
                              "top": [{"class": int(c), "p": float(v)} for v, c in
                                      zip(top.values[i], top.indices[i], strict=True)]})

    def result(self) -> dict[str, Any]:
        return {"kind": "imagenet_classes", "what": "top classes by softmax (ImageNet-1k "
                "class index 0..999)", "inputs": self.rows}


class ImageSource(Source):
    kind = "image"

    def __init__(self, paths: list[Path], prep: ImagePrep, description: str):
        for p in paths:  # every file checked up front (header only), decoded batch by batch
            read_image(p, decode=False)
        self.paths = paths
        self.prep = prep
        self.count = len(paths)
        self.description = f"{description} ({prep.describe()})"
        self.readout = ImageReadout([p.name for p in paths])

    def batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.count, batch_size):
            x = torch.stack([preprocess(read_image(p), self.prep)
                             for p in self.paths[start:start + batch_size]])
            yield Batch(args=(x,), kwargs={}, offset=start, size=x.shape[0])


def bins_to_hz(bins: torch.Tensor | np.ndarray) -> np.ndarray:
    """Crepe's pitch bin -> frequency: cents = 20·bin + 1997.38, f = 10·2^(cents/1200)."""
    b = np.asarray(bins, dtype=np.float64)
    return 10.0 * 2.0 ** ((CENTS_PER_BIN * b + CENTS_BIN0) / 1200.0)


class PitchReadout:
    """The pitch of each frame: the argmax of Crepe's 360 bins, its activation as confidence."""

    def __init__(self) -> None:
        self.hz: list[np.ndarray] = []
        self.conf: list[np.ndarray] = []

    def update(self, out: Any, batch: Batch) -> None:
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == batch.size:
            v, i = out.double().max(1)
            self.hz.append(bins_to_hz(i.numpy()))
            self.conf.append(v.numpy())

    def result(self) -> dict[str, Any]:
        hz = np.concatenate(self.hz) if self.hz else np.zeros(0)
        conf = np.concatenate(self.conf) if self.conf else np.zeros(0)
        voiced = conf >= 0.5

        def summary(a: np.ndarray) -> dict[str, float | None]:
            return {k: (float(f(a)) if a.size else None) for k, f in
                    (("median", np.median), ("min", np.min), ("max", np.max))}
        return {"kind": "pitch", "what": "argmax of the 360 pitch bins per frame (no "
                "Viterbi, no dither), confidence = that bin's sigmoid", "frames": int(hz.size),
                "hz": summary(hz), "voiced_frames": int(voiced.sum()),
                "voiced_hz": summary(hz[voiced]), "confidence": summary(conf)}


class AudioSource(Source):
    kind = "audio"

    def __init__(self, signal: np.ndarray, prep: AudioPrep, description: str,
                 limit: int | None = None):
        if signal.size < prep.frame:
            raise InspectError(f"{description}: {signal.size} samples at {prep.sample_rate} Hz,"
                               f" shorter than one {prep.frame}-sample frame")
        self.signal = signal.astype(np.float64)
        self.prep = prep
        self.count = 1 + (signal.size - prep.frame) // prep.hop
        self.count = min(self.count, limit) if limit else self.count
        self.description = f"{description}, {self.count} frames ({prep.describe()})"
        self.readout = PitchReadout()

    def batches(self, batch_size: int) -> Iterator[Batch]:
        p = self.prep
        windows = np.lib.stride_tricks.sliding_window_view(self.signal, p.frame)[::p.hop]
        for start in range(0, self.count, batch_size):
            f = torch.from_numpy(windows[start:start + batch_size].copy())
            f = f - f.mean(1, keepdim=True)
            f = f / f.std(1, keepdim=True).clamp_min(1e-10)
            yield Batch(args=(f.float(),), kwargs={}, offset=start, size=f.shape[0])


def tone(hz: float, prep: AudioPrep, seconds: float = TONE_SECONDS) -> np.ndarray:
    if not (math.isfinite(hz) and 0 < hz < prep.sample_rate / 2):
        raise InspectError(f"--tone {hz:g}: give a frequency in Hz above 0 and below "
                           f"{prep.sample_rate // 2} (half the {prep.sample_rate} Hz rate)")
    t = np.arange(int(seconds * prep.sample_rate)) / prep.sample_rate
    return np.sin(2 * np.pi * hz * t)


def read_wav(path: Path, rate: int) -> tuple[np.ndarray, str]:
    """A PCM WAV file as mono float64 in [-1, 1] at `rate` Hz (channels averaged, resampled
    with scipy's polyphase filter); the second value says what was done."""
    _regular(path, "audio file")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, sr, n = (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                                      w.getnframes())
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise InspectError(f"audio file {path}: not a PCM WAV file ({exc})") from None
    if width == 1:
        x = np.frombuffer(raw, np.uint8).astype(np.float64) / 128.0 - 1.0
    elif width in (2, 4):
        x = np.frombuffer(raw, f"<i{width}").astype(np.float64) / 2.0 ** (8 * width - 1)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 2**23, v - 2**24, v).astype(np.float64) / 2.0**23
    else:
        raise InspectError(f"audio file {path}: {8 * width}-bit samples are not supported")
    x = x[:x.size - x.size % channels].reshape(-1, channels).mean(1)
    done = f"{path.name}: {n / sr if sr else 0:.2f} s, {channels} channel(s) at {sr} Hz"
    if channels > 1:
        done += ", averaged to mono"
    if sr != rate:
        try:
            from scipy.signal import resample_poly
        except ImportError:
            raise MissingExtraError(f"audio at {sr} Hz (Crepe needs {rate} Hz)", "data",
                                    "scipy") from None
        g = math.gcd(rate, sr)
        x = resample_poly(x, rate // g, sr // g)
        done += f", resampled to {rate} Hz"
    return x, done


def _kind_name(prep: Any) -> str:
    return {"image": "images (--image FILE)", "audio": "audio (--tone HZ or --audio FILE.wav)"
            }.get(getattr(prep, "kind", ""), "")


def resolve(spec: InputSpec, prep: Any, model_name: str, others: list[str]) -> Source | None:
    """The Source for --image/--tone/--audio (or a packaged CNN's default inputs); None when
    the model's own tensors (--random, a tensor file) are given instead. `others`: the other
    kinds of input given on the command line."""
    given = [k for k, on in (("--image", bool(spec.images)), ("--tone", spec.tone is not None),
                             ("--audio", spec.audio is not None)) if on]
    if len(given) + len(others) > 1:
        raise InspectError(f"give one kind of input, not {' and '.join(given + others)}")
    if prep is None:
        if given:
            which = [n for n, m in MODELS.items()
                     if m.prep.kind == ("image" if given[0] == "--image" else "audio")]
            raise InspectError(f"{given[0]} is for {', '.join(which)}; model {model_name} "
                               f"takes text or tensors")
        return None
    if given and (given[0] == "--image") != (prep.kind == "image"):
        raise InspectError(f"model {model_name} takes {_kind_name(prep)}, not {given[0]}")
    if any(o.startswith("--text") for o in others):
        raise InspectError(f"model {model_name} takes {_kind_name(prep)}, not text")
    if others:
        return None  # preprocessed tensors of the model's input shape
    if prep.kind == "image":
        paths = list(spec.images) or default_photos()
        paths = paths[:spec.limit] if spec.limit else paths
        desc = "scikit-learn's photos china.jpg, flower.jpg" if not spec.images else \
            ", ".join(p.name for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        return ImageSource(paths, prep, desc)
    if spec.audio is not None:
        signal, desc = read_wav(spec.audio, prep.sample_rate)
    else:
        hz = DEFAULT_TONE_HZ if spec.tone is None else spec.tone
        signal = tone(hz, prep)
        desc = f"{hz:g} Hz sine, {TONE_SECONDS:g} s at {prep.sample_rate} Hz"
    return AudioSource(signal, prep, desc, spec.limit)
