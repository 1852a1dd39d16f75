"""Synthetic training tasks, drawn from their own generator so they never shift the model's draws.

The generator is `torch.Generator().manual_seed(seed + TASK_SEED_OFFSET)`: the same seed gives
the same task whatever the model (depth, width, norm), so norms are compared on the same data.
One pool of n_train + n_heldout examples is drawn and split, training examples first.

- clusters: `outputs` classes, labels uniform; class centres ~ N(0, s^2 I) with
  s = separation / sqrt(2 * in_features), so two centres lie about `separation` apart; each
  example is its centre plus N(0, I) noise. Loss: cross-entropy; accuracy is reported.
- teacher:  x ~ N(0, I); y = tanh(x A) B + noise * N(0, I) with A ~ N(0, 1/in_features) of
  width TEACHER_WIDTH and B ~ N(0, 1/TEACHER_WIDTH). Loss: MSE; no accuracy.
- digits:   scikit-learn's 1,797 handwritten 8x8 digits (lnexp.data.load_digits, pixels in
  [0, 1]), 10 classes; a randperm from the task's generator splits them: the first n_train
  train, the next n_heldout are held out. (N, 64) features or (N, 1, 8, 8) images by
  data.layout. Loss: cross-entropy.
- retrieve: sequences (N, T, in_features), T = data.tokens (data.layout: sequence). Each
  position holds one of `outputs` symbols (a fixed random N(0, I) embedding each); one
  position p < T - 1, random
  per sequence, also carries a marker vector (N(0, I), the same for all). The label is the
  symbol at p, read at the last position (the model's output there), so the answer has to be
  moved there by attention: a model that treats positions independently is at chance.
  Loss: cross-entropy; accuracy is reported.
- charlm:   next-character prediction on data.corpus (lnexp/text.py: split by position, the
  training part's vocabulary). Training examples are n_train windows of T + 1 characters at
  start positions drawn uniformly from the training part (from the task's generator);
  held-out examples are n_heldout windows at evenly spaced positions of the held-out part
  (the same whatever the seed). x = the first T characters (int64 indices), y = the T next
  ones. Loss: cross-entropy over every position, in nats; held-out bits per character =
  held-out loss / ln 2.
"""


from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lnexp.config import TrainConfig

TASK_SEED_OFFSET = 1_000_003
TEACHER_WIDTH = 32


@dataclass(frozen=True)
class Task:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_heldout: torch.Tensor
    y_heldout: torch.Tensor
    classification: bool
    vocab: tuple[str, ...] | None = None  # charlm: the characters of each index

    def to(self, device: torch.device, dtype: torch.dtype) -> Task:
        """The inputs in the model's device and dtype (labels keep theirs)."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

        return Task(move(self.x_train), self.y_train.to(device) if self.classification
                    else move(self.y_train), move(self.x_heldout),
                    self.y_heldout.to(device) if self.classification else move(self.y_heldout),
                    self.classification, self.vocab)


def generator(seed: int) -> torch.Generator:
    """The task's own generator (also used for the minibatch shuffles)."""
    return torch.Generator().manual_seed(seed + TASK_SEED_OFFSET)


def charlm_task(cfg: TrainConfig, corpus: str, tokens: int, g: torch.Generator) -> Task:
    """Windows of `corpus` (see the module docstring)."""
    from lnexp import text

    c = text.corpus(corpus, tokens)
    train, held = torch.from_numpy(c.train), torch.from_numpy(c.heldout)
    span = torch.arange(tokens + 1)
    starts = torch.randint(len(train) - tokens, (cfg.n_train,), generator=g)
    w_train = train[starts[:, None] + span]
    last = len(held) - tokens - 1
    w_held = held[torch.linspace(0, last, cfg.n_heldout).round().long()[:, None] + span]
    return Task(w_train[:, :-1], w_train[:, 1:], w_held[:, :-1], w_held[:, 1:],
                classification=True, vocab=c.chars)


def make_task(cfg: TrainConfig, in_features: int, g: torch.Generator,
              tokens: int | None = None, layout: str = "features",
              corpus: str | None = None) -> Task:
    """Draw the task's examples from `g`; `tokens` is T for the sequence tasks (retrieve,
    charlm), `layout` the shape of digits ((N, 64) features or (N, 1, 8, 8) images), `corpus`
    charlm's text."""
    n = cfg.n_train + cfg.n_heldout
    if cfg.task == "charlm":
        assert tokens is not None and corpus is not None
        return charlm_task(cfg, corpus, tokens, g)
    if cfg.task == "digits":
        from lnexp import data

        labels = torch.from_numpy(data.load_digits()[1])
        index = torch.randperm(len(labels), generator=g)[:n]
        x, y = data.digits_tensor(index, layout), labels[index]
    elif cfg.task == "retrieve":
        assert tokens is not None and tokens >= 2
        emb = torch.randn(cfg.outputs, in_features, generator=g)
        marker = torch.randn(in_features, generator=g)
        symbols = torch.randint(cfg.outputs, (n, tokens), generator=g)
        where = torch.randint(tokens - 1, (n,), generator=g)
        x = emb[symbols]
        x[torch.arange(n), where] += marker
        y = symbols[torch.arange(n), where]
    elif cfg.task == "clusters":
        s = cfg.separation / math.sqrt(2 * in_features)
        centres = torch.randn(cfg.outputs, in_features, generator=g) * s
        y = torch.randint(cfg.outputs, (n,), generator=g)
        x = centres[y] + torch.randn(n, in_features, generator=g)
    else:
        a = torch.randn(in_features, TEACHER_WIDTH, generator=g) / math.sqrt(in_features)
        b = torch.randn(TEACHER_WIDTH, cfg.outputs, generator=g) / math.sqrt(TEACHER_WIDTH)
        x = torch.randn(n, in_features, generator=g)
        y = torch.tanh(x @ a) @ b + cfg.noise * torch.randn(n, cfg.outputs, generator=g)
    k = cfg.n_train
    return Task(x[:k], y[:k], x[k:], y[k:], classification=cfg.task != "teacher")
