"""MLP blocks: a stack of `depth` Linear + norm blocks. Depth 1 with the defaults is the
tutorial's SimpleModel. The same stack serves every layout (lnexp.registry.LAYOUTS): on
`sequence` (N, T, C) the Linear acts on each token's channels; on `image` (N, C, H, W) each
block's layer is a Conv2d (lnexp/models/conv.py). The norm is built for the layout
(lnexp.norms), so it always sees the layout's tensor and normalizes its own axes.

Block layouts (`model.placement`), with F the block's branch and Act the configured
activation (`none` = identity):

- post:          F -> Norm -> Act                 (the tutorial: Linear then the norm)
- pre:           Norm -> F -> Act                 (no residual)
- pre_residual:  x + Act(F(Norm(x))), and one final Norm after the last block (Pre-LN);
                 with model.ln_scaling the Norm's output is times 1/sqrt(l) at block l
- post_residual: Norm(x + Act(F(x)))                                        (Post-LN)
- peri_residual: x + Norm_out(F(Norm(x))), and one final Norm  (Peri-LN; ffn2 / transformer)
- deepnorm_residual: Norm(alpha·x + F(x)), alpha = (2N)^(1/4), F's Linears scaled by
                 (8N)^(-1/4) at init, N = model.depth       (DeepNorm; ffn2 / transformer)
(lnexp.models.layers.residual wires the residual ones, for this stack and the transformer's.)

`model.block` picks F: `linear` is one Linear (the default); `ffn2` is Linear -> Act ->
Linear, the transformer's feed-forward branch, and then the activation is used inside the
branch only (no Act after it), so post_residual / pre_residual are exactly the FFN half of
Xiong et al.'s Post-LN / Pre-LN layers (features and sequences, per token; not images);
`transformer` blocks come from lnexp/models/transformer.py (sequences only).

Every Linear is built (and re-initialized, for xavier/kaiming) before the next block, and norms
draw no random numbers, so with depth 1 and the default init the global RNG is consumed exactly
as in the tutorial's script.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lnexp.config import ModelConfig
from lnexp.models.layers import (
    FFN2,
    activation,
    deepnorm_init,
    linear,
    ln_scale,
    norm,
    residual,
    residual_alpha,
)
from lnexp.models.transformer import TransformerBlock
from lnexp.registry import LAYOUTS, PLACEMENTS


def layer(d_in: int, d_out: int, cfg: ModelConfig, layout: str = "features") -> nn.Module:
    """The layer of one linear block on `layout`: Linear (features, sequence: per token) or
    Conv2d (image)."""
    if LAYOUTS[layout].layer == "conv2d":
        from lnexp.models.conv import conv2d

        return conv2d(d_in, d_out, cfg)
    return linear(d_in, d_out, cfg)


@dataclass
class Trace:
    """One forward pass: the final output, the first norm's input/output, every block's output."""

    output: torch.Tensor
    pre: torch.Tensor  # entering the first norm
    post: torch.Tensor  # leaving the first norm
    blocks: list[torch.Tensor]  # each block's output, first block first


class Block(nn.Module):
    """One block; `forward` returns (output, norm input, norm output). `index` is its place in
    the stack, 1-based (LayerNorm Scaling's l)."""

    def __init__(self, d_in: int, d_out: int, cfg: ModelConfig, layout: str = "features",
                 index: int = 1):
        super().__init__()
        self.placement = cfg.placement
        self.alpha = residual_alpha(cfg)
        self.scale = ln_scale(cfg, index)
        normed = d_in if PLACEMENTS[cfg.placement].norm_first else d_out
        # The branch is built first (the tutorial's order); norms consume no random numbers.
        self.linear: nn.Module = (FFN2(d_in, d_out, cfg) if cfg.block == "ffn2"
                                  else layer(d_in, d_out, cfg, layout) if cfg.linear
                                  else nn.Identity())
        if isinstance(self.linear, FFN2):
            deepnorm_init([self.linear.fc1, self.linear.fc2], cfg)
        self.norm = norm(normed, cfg, layout)
        peri = cfg.placement == "peri_residual"
        self.norm_out = norm(d_out, cfg, layout) if peri else None
        self.act = activation("none" if cfg.block == "ffn2" else cfg.activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.placement
        if p == "post":
            pre = self.linear(x)
            post = self.norm(pre)
            return self.act(post), pre, post
        if p == "pre":
            post = self.norm(x)
            return self.act(self.linear(post)), x, post
        return residual(p, x, self._branch, self.norm, self.norm_out, alpha=self.alpha,
                        scale=self.scale)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))

    def linears(self) -> list[nn.Module]:
        """This block's Linear (images: Conv2d) layers, in the order data flows through them."""
        return [m for m in self.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


class Model(nn.Module):
    """`depth` blocks (plus a final norm for pre_residual and peri_residual). `forward`
    returns the output; `trace` returns the activations the experiment measures."""

    def __init__(self, cfg: ModelConfig, layout: str = "features"):
        super().__init__()
        w = cfg.widths()
        self.blocks = nn.ModuleList(_block(w[i], w[i + 1], cfg, layout, i + 1)
                                    for i in range(len(w) - 1))
        final = PLACEMENTS[cfg.placement].final_norm
        self.final_norm = norm(w[-1], cfg, layout) if final else nn.Identity()

    def trace(self, x: torch.Tensor) -> Trace:
        outs: list[torch.Tensor] = []
        first: tuple[torch.Tensor, torch.Tensor] | None = None
        for block in self.blocks:
            x, pre, post = block(x)
            first = first or (pre, post)
            outs.append(x)
        assert first is not None
        return Trace(output=self.final_norm(x), pre=first[0], post=first[1], blocks=outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)[0]
        return self.final_norm(x)

    def block_linears(self) -> list[list[nn.Module]]:
        """The Linear (images: Conv2d) layers of each block, first block first."""
        return [block.linears() for block in self.blocks]

    def linears(self) -> list[nn.Module]:
        """Every Linear (images: Conv2d) layer, first block first (empty when linear is off):
        the weights whose gradient norms are reported."""
        return [lin for lins in self.block_linears() for lin in lins]

    def linear_names(self) -> list[str]:
        """A name per Linear of `linears()`: block3 (one per block) or block3.fc1."""
        out = []
        for i, block in enumerate(self.blocks, start=1):
            named = [n for n, m in block.named_modules()
                     if isinstance(m, nn.Linear | nn.Conv2d)]
            out += [f"block{i}" if len(named) == 1 else f"block{i}.{n.rpartition('.')[2]}"
                    for n in named]
        return out


def _block(d_in: int, d_out: int, cfg: ModelConfig, layout: str, index: int) -> nn.Module:
    if cfg.block == "transformer":
        return TransformerBlock(d_in, cfg, index)
    return Block(d_in, d_out, cfg, layout, index)


def build_model(cfg: ModelConfig, layout: str = "features") -> Model:
    """Build the model for `layout` in the configured mode (train or eval)."""
    model = Model(cfg, layout)
    model.train(cfg.mode == "train")
    return model
