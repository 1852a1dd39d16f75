"""Models the experiment measures, one file per block kind: mlp.py (Linear + norm blocks, the
tutorial's SimpleModel at depth 1). Conv and transformer blocks land beside it."""

from lnexp.models.mlp import Block, Model, Trace, build_model

__all__ = ["Block", "Model", "Trace", "build_model"]
