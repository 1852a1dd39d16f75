"""Models the experiment measures, one file per block kind: mlp.py (Linear + norm blocks, the
tutorial's SimpleModel at depth 1, and the stack), conv.py (the Conv2d layer of image blocks),
transformer.py (attention + FFN blocks on data.layout: sequence), layers.py (the Linear, norm,
activation and FFN branch both stacks are built from, and the residual placements), probes.py
(per-block hidden-state RMS and largest attention logit, by forward hooks)."""

from lnexp.models.mlp import Block, Model, Trace, build_model

__all__ = ["Block", "Model", "Trace", "build_model"]
