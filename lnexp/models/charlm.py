"""The character-level language model (`train.task: charlm`): token embedding + learned
positional embedding -> the configured stack of transformer blocks (lnexp.models.mlp.Model,
attention made causal) -> a Linear head to the vocabulary at every position.

Initialization, from the global RNG after the model and the snapshot's draws (as the other
tasks' head): the token embedding is torch's nn.Embedding default, N(0, 1) per entry, so the
stream entering block 1 has RMS ~1 like the snapshot's N(0, 1) inputs; the positional
embedding is N(0, 0.02^2) (GPT-2's scale: a small position signal the model can grow); the
head is torch's nn.Linear default. With a normalized stream the logits start small, so the
held-out loss at step 0 is close to log(vocabulary size) (tests/test_charlm.py checks within
10 % in bits).
"""

from __future__ import annotations

import torch
from torch import nn

from lnexp.models.transformer import SelfAttention

POSITION_STD = 0.02


class CharLM(nn.Module):
    """(N, T) character indices -> (N, T, vocab) next-character logits."""

    def __init__(self, body: nn.Module, vocab: int, context: int, width: int):
        super().__init__()
        self.body = body
        for m in body.modules():
            if isinstance(m, SelfAttention):
                m.causal = True
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(context, width) * POSITION_STD)
        self.head = nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx) + self.position[: idx.shape[1]]
        return self.head(self.body(x))
