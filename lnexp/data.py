"""The input batch: explicit values, or a draw from the global torch RNG.

Every distribution is scaled so that `loc` is its mean and `scale` its standard deviation, so
switching the shape never changes the first two moments of the input:

- normal:    loc + scale * N(0, 1)                       (for 0/1 exactly the tutorial's randn)
- uniform:   U(loc - scale*sqrt(3), loc + scale*sqrt(3))
- laplace:   Laplace(loc, b = scale / sqrt(2))
- student_t: loc + scale * sqrt((df - 2) / df) * t(df)    (df > 2)
"""

from __future__ import annotations

import math

import torch

from lnexp.config import DataConfig


def make_inputs(cfg: DataConfig, in_features: int, rows: int | None = None,
                start: int = 0) -> torch.Tensor:
    """Return a float32 (rows, in_features) tensor: rows start.. of the batch (all
    n_samples by default). Random draws use the global RNG, so drawing the batch chunk by chunk
    continues one stream (see experiment.chunk_rows for when that equals one big draw)."""
    rows = cfg.n_samples - start if rows is None else rows
    if cfg.values is not None:
        return torch.tensor(cfg.values[start:start + rows], dtype=torch.float32)
    shape = (rows, in_features)
    if cfg.distribution == "normal":
        unit = torch.randn(shape)
    elif cfg.distribution == "uniform":
        unit = (torch.rand(shape) * 2.0 - 1.0) * math.sqrt(3.0)
    elif cfg.distribution == "laplace":
        unit = torch.distributions.Laplace(0.0, 1.0 / math.sqrt(2.0)).sample(shape)
    else:  # student_t
        unit = torch.distributions.StudentT(cfg.df).sample(shape) * math.sqrt((cfg.df - 2) / cfg.df)
    if cfg.loc == 0.0 and cfg.scale == 1.0:
        return unit  # bit-identical to the tutorial's torch.randn
    return unit * cfg.scale + cfg.loc
