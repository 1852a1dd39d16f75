"""The input batch: explicit values, a draw from the global torch RNG, or real digits.

The batch has the layout's shape (lnexp.registry.LAYOUTS): (N, C_in) features, (N, C_in, H, W)
images or (N, T, C_in) sequences. Every distribution is scaled so that `loc` is its mean and
`scale` its standard deviation, so switching the shape never changes the first two moments of
the input:

- normal:    loc + scale * N(0, 1)                       (for 0/1 exactly the tutorial's randn)
- uniform:   U(loc - scale*sqrt(3), loc + scale*sqrt(3))
- laplace:   Laplace(loc, b = scale / sqrt(2))
- student_t: loc + scale * sqrt((df - 2) / df) * t(df)    (df > 2)

`data.source: digits` takes scikit-learn's bundled 8x8 handwritten digits instead (1,797
images shipped inside the package, no download; pixels 0..16 scaled to [0, 1]): a subset of
n_samples chosen by `torch.randperm` from the global RNG, i.e. at the point of the draw order
where random data would be drawn.

`data.source: text` (data.layout: sequence) takes n_samples windows of T = data.tokens
characters of data.corpus's training part (lnexp/text.py), each character replaced by a fixed
N(0, I) vector: first the (vocabulary, C_in) embedding, then the window starts
(torch.randint), both from the global RNG at the point of the draw order where random data
would be drawn. (The char-LM that trains on the corpus learns its own embedding: this is only
the snapshot's batch.)
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from lnexp.config import DataConfig
from lnexp.config.sections import DIGITS_EXTRA
from lnexp.errors import ConfigError


def make_inputs(cfg: DataConfig, in_features: int, rows: int | None = None,
                start: int = 0) -> torch.Tensor:
    """Return a float32 tensor of `rows` samples of the layout's shape with `in_features`
    channels: samples start.. of the batch (all n_samples by default). Random draws use the
    global RNG, so drawing the batch chunk by chunk continues one stream (see
    plan.chunk_rows for when that equals one big draw)."""
    rows = cfg.n_samples - start if rows is None else rows
    if cfg.values is not None:
        return torch.tensor(cfg.values[start:start + rows], dtype=torch.float32)
    shape = (rows, *cfg.sample_shape(in_features))
    if cfg.source == "digits":
        return digits_batch(cfg.n_samples, cfg.layout)[start:start + rows]
    if cfg.source == "text":
        return text_batch(cfg, in_features)[start:start + rows]
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


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as float32 (1797, 8, 8) pixels in [0, 1] and int64 labels 0..9.

    Reads the CSV that scikit-learn ships (sklearn/datasets/data/digits.csv.gz, what
    sklearn.datasets.load_digits parses; a test checks they agree) without importing sklearn,
    whose scipy import alone takes ~2 s here; falls back to load_digits if the file moved.
    Raises ConfigError (exit 2) naming the extra when scikit-learn is missing."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError([DIGITS_EXTRA])
    csv = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
    if csv.is_file():
        table = np.loadtxt(csv, delimiter=",", dtype=np.float64)
        pixels, target = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - a scikit-learn that moved its data file
        from sklearn.datasets import load_digits as sk_load_digits

        bunch = sk_load_digits()
        pixels, target = bunch.data, bunch.target
    images = (pixels.reshape(-1, 8, 8) / 16.0).astype(np.float32)  # pixels are 0..16
    return images, target.astype(np.int64)


def digits_tensor(index: torch.Tensor, layout: str) -> torch.Tensor:
    """The digits at `index` as (k, 1, 8, 8) images or (k, 64) features."""
    images, _ = load_digits()
    x = torch.from_numpy(images)[index]
    return x.unsqueeze(1) if layout == "image" else x.reshape(len(index), -1)


def digits_batch(n: int, layout: str) -> torch.Tensor:
    """A subset of n digits, chosen by torch.randperm from the global RNG."""
    index = torch.randperm(len(load_digits()[0]))[:n]
    return digits_tensor(index, layout)


def text_batch(cfg: DataConfig, channels: int) -> torch.Tensor:
    """n_samples character windows embedded as fixed N(0, I) vectors (module docstring)."""
    from lnexp import text

    tokens = int(cfg.tokens or 1)
    c = text.corpus(cfg.corpus or text.SHAKESPEARE, tokens)
    emb = torch.randn(c.vocab_size, channels)
    train = torch.from_numpy(c.train)
    starts = torch.randint(len(train) - tokens, (cfg.n_samples,))
    return emb[train[starts[:, None] + torch.arange(tokens)]]
