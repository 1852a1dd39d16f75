"""Inputs of the packaged CNNs (--image, --tone, --audio) and the BatchNorm running-statistics
measurement, on small real modules and files written here (no model package needed)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lnexp.inspect import bn_running, media
from lnexp.inspect.core import measure
from lnexp.inspect.errors import InspectError
from lnexp.inspect.inputs import InputSpec, RandomSource, resolve
from lnexp.inspect.options import InspectOptions
from lnexp.inspect.zoo_cnn import LITE_MEAN, LITE_STD, MODELS, AudioPrep, ImagePrep
from tests.test_inspect_core import loaded

IMAGE = MODELS["mobilenet_v2"].prep
AUDIO = AudioPrep()


def _wav(path: Path, x: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] (shape (n,) or (n, channels)) as integer PCM."""
    x = x.reshape(len(x), -1) if x.ndim > 1 else np.repeat(x[:, None], channels, 1)
    if width == 1:
        raw = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        v = np.round(x * (2**23 - 1)).astype(np.int32).reshape(-1)
        raw = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], 1).astype(np.uint8).tobytes()
    else:
        raw = np.round(x * (2.0 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spec)])


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_widths_stereo_and_resampling(tmp_path: Path, width: int) -> None:
    rate = 8000
    t = np.arange(rate) / rate  # 1 s
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 440 * t)
    path = _wav(tmp_path / "a.wav", np.stack([left, right], 1), rate, width)
    x, done = media.read_wav(path, 16000)
    assert x.size == 16000 and "averaged to mono" in done and "resampled to 16000" in done
    assert _peak_hz(x, 16000) == pytest.approx(440, abs=1.5)
    mid = x[4000:12000]  # away from the resampler's edges: the mean of the channels
    assert np.abs(mid).max() == pytest.approx(0.4, abs=0.02 if width == 1 else 0.005)


def test_wav_at_16k_is_used_as_is(tmp_path: Path) -> None:
    x0 = 0.25 * np.sin(2 * np.pi * 220 * np.arange(2048) / 16000)
    x, done = media.read_wav(_wav(tmp_path / "b.wav", x0, 16000), 16000)
    assert "resampled" not in done and "mono" not in done
    np.testing.assert_allclose(x, x0, atol=1 / 2**15)


def test_not_a_wav_or_image_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not audio, not an image\n")
    with pytest.raises(InspectError, match=r"audio file .*notes.txt: not a PCM WAV file"):
        media.read_wav(text, 16000)
    with pytest.raises(InspectError, match=r"image file .*notes.txt: not an image PIL can read"):
        media.read_image(text)
    with pytest.raises(InspectError, match="not a regular file"):
        media.read_image(tmp_path)
    with pytest.raises(InspectError, match="cannot read it"):
        media.read_wav(tmp_path / "missing.wav", 16000)
    short = _wav(tmp_path / "short.wav", np.zeros(500), 16000)
    with pytest.raises(InspectError, match="shorter than one 1024-sample frame"):
        resolve(InputSpec(audio=short), None, "crepe_tiny", AUDIO)


@pytest.mark.parametrize("hz", [0.0, -5.0, 8000.0, float("nan"), float("inf")])
def test_tone_out_of_range(hz: float) -> None:
    with pytest.raises(InspectError, match="--tone"):
        media.tone(hz, AUDIO)


def test_tone_frames_are_crepe_frames() -> None:
    src = resolve(InputSpec(tone=440.0), None, "crepe_tiny", AUDIO)
    assert src.kind == "audio" and src.count == 1 + (16000 - 1024) // 160
    b = next(src.batches(8))
    f = b.args[0].double()
    assert f.shape == (8, 1024)
    np.testing.assert_allclose(f.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(f.std(1), 1, atol=1e-5)
    assert resolve(InputSpec(tone=440.0, limit=5), None, "crepe_tiny", AUDIO).count == 5


def test_bins_to_hz_is_crepes_formula() -> None:
    # bin i is 20·i + 1997.379... cents above 10 Hz; 440 Hz lies between bins 227 and 228
    hz = media.bins_to_hz(np.array([0, 227, 228]))
    assert hz[0] == pytest.approx(10 * 2 ** (1997.3794084376191 / 1200))
    assert hz[1] < 440 < hz[2] and hz[2] == pytest.approx(441.543, abs=1e-3)


def test_image_preprocessing(tmp_path: Path) -> None:
    from PIL import Image

    grey = np.full((300, 500, 3), 127, np.uint8)
    grey[:, :, 0] = 200  # red channel differs
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    x = media.preprocess(media.read_image(path), IMAGE)
    assert x.shape == (3, 224, 224)
    assert float(x[0].mean()) == pytest.approx((200 / 255 - 0.485) / 0.229, abs=1e-4)
    assert float(x[1].mean()) == pytest.approx((127 / 255 - 0.456) / 0.224, abs=1e-4)
    lite = ImagePrep(224, 256, "bicubic", LITE_MEAN, LITE_STD)
    assert float(media.preprocess(grey, lite)[1].mean()) == pytest.approx(0, abs=1e-6)


def test_default_photos_and_limit() -> None:
    pytest.importorskip("sklearn")
    src = resolve(InputSpec(), None, "mobilenet_v2", IMAGE)
    assert src.kind == "image" and [p.name for p in src.paths] == ["china.jpg", "flower.jpg"]
    assert next(src.batches(4)).args[0].shape == (2, 3, 224, 224)
    assert resolve(InputSpec(limit=1), None, "mobilenet_v2", IMAGE).count == 1


@pytest.mark.parametrize(("spec", "prep", "message"), [
    (InputSpec(images=(Path("a.jpg"),)), None, r"--image is for mobilenet_v2, efficientnet_lite0"),
    (InputSpec(tone=440.0), None, r"--tone is for crepe_tiny; model m takes text or tensors"),
    (InputSpec(tone=440.0), IMAGE, r"model m takes images \(--image FILE\), not --tone"),
    (InputSpec(images=(Path("a.jpg"),)), AUDIO, r"takes audio .*, not --image"),
    (InputSpec(texts=("hello",)), IMAGE, r"model m takes images .*, not text"),
    (InputSpec(tone=440.0, random="2,1024"), AUDIO, r"give one kind of input, not --tone and "
                                                    r"--random"),
    (InputSpec(tone=440.0, audio=Path("x.wav")), AUDIO, "give one kind of input"),
])
def test_wrong_kind_of_input(spec: InputSpec, prep, message: str) -> None:
    with pytest.raises(InspectError, match=message):
        resolve(spec, None, "m", prep)


def test_tensors_still_reach_a_cnn() -> None:
    src = resolve(InputSpec(random="2,3,224,224"), None, "mobilenet_v2", IMAGE)
    assert isinstance(src, RandomSource)


class ConvBN(nn.Module):
    """conv -> BN2d (running stats set far from the data), linear -> BN1d."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)
        self.bn1 = nn.BatchNorm1d(5)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.tensor([0.5, -0.5, 1.0, 0.0]))
            self.bn.running_var.copy_(torch.tensor([0.25, 4.0, 1.0, 9.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn1(self.fc(self.bn(self.conv(x)).mean((2, 3))))


def test_running_gap_and_roles_against_a_plain_computation() -> None:
    net = ConvBN().eval()
    source = RandomSource((10, 3, 6, 6), 3)
    out = measure(loaded(net), source, InspectOptions(batch_size=4))
    layer = {r.name: r for r in out.layers}
    assert layer["bn"].role == "conv-BN" and layer["bn1"].role == "BN"
    x = torch.cat([b.args[0] for b in source.batches(4)])
    with torch.no_grad():
        h = net.conv(x).double().permute(0, 2, 3, 1).reshape(-1, 4)
    mean, var = h.mean(0).numpy(), h.var(0, unbiased=False).numpy()
    rm, rv, eps = net.bn.running_mean.double().numpy(), net.bn.running_var.double().numpy(), 1e-5
    gap = np.abs(mean - rm) / np.sqrt(rv + eps)
    ratio = (var + eps) / (rv + eps)
    g = layer["bn"].running
    assert g.channels == 4 and g.samples == 10 * 36
    assert g.mean_gap["max"] == pytest.approx(gap.max(), rel=1e-10)
    assert g.mean_gap["median"] == pytest.approx(np.median(gap), rel=1e-10)
    assert g.mean_gap_channel == int(np.argmax(gap))
    assert g.var_ratio["median"] == pytest.approx(np.median(ratio), rel=1e-10)
    assert g.log2_var_ratio_rms == pytest.approx(np.sqrt(np.mean(np.log2(ratio) ** 2)), rel=1e-10)
    # running statistics equal to the data's: no gap
    with torch.no_grad():
        net.bn.running_mean.copy_(torch.from_numpy(mean))
        net.bn.running_var.copy_(torch.from_numpy(var))
    same = measure(loaded(net), source, InspectOptions(batch_size=4))
    g2 = next(r for r in same.layers if r.name == "bn").running
    assert g2.mean_gap["max"] < 1e-5 and g2.log2_var_ratio_rms < 1e-5


def test_no_running_gap_or_role_for_layernorm() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)).eval()
    out = measure(loaded(net), RandomSource((3, 4), 0), InspectOptions())
    assert out.layers[0].running is None and out.layers[0].role is None
    assert bn_running.notes(out) == []


def test_images_are_decoded_batch_by_batch_and_a_truncated_one_is_one_line(
        tmp_path: Path) -> None:
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), np.uint8)).save(good)
    jpg = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8)).save(jpg)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpg.read_bytes()[:3000])  # the header is intact, the pixels are not
    net = ConvBN().eval()
    net.conv = nn.Conv2d(3, 4, 3, padding=1)
    src = resolve(InputSpec(images=(good, good, good)), None, "m", IMAGE)
    out = measure(loaded(net), src, InspectOptions(batch_size=2))
    assert out.inputs["count"] == 3 and out.layers[0].running.samples == 3 * 224 * 224
    assert [r["file"] for r in out.predictions["inputs"]] == ["good.png"] * 3
    src = resolve(InputSpec(images=(good, cut)), None, "m", IMAGE)  # the header reads
    with pytest.raises(InspectError, match=r"image file .*cut.jpg: not an image PIL can read"):
        measure(loaded(net), src, InspectOptions(batch_size=1))
