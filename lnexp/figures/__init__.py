"""Every figure of every result kind. Each function builds and returns a Figure;
lnexp.store.figures saves it.

`FIGURES` maps each registry name (lnexp.registry.RUN_FIGURES, COMPARE_FIGURES and the sweep's
summary) to the function that draws it: the one entry point of the figure renderers
(lnexp.store.figures) and of the sweep. One module per result kind: run, compare, training,
layouts (images and sequences) and sweep; common holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.figure import Figure

from lnexp.figures.compare import compare_layers, comparison
from lnexp.figures.diagnostics import training_diagnostics
from lnexp.figures.layouts import feature_maps, norm_axes, token_heatmap
from lnexp.figures.run import heatmap, layers, overview
from lnexp.figures.sweep import sweep_summary
from lnexp.figures.training import training

# Every figure by its registry name (lnexp.registry): what a FigureJob draws.
FIGURES: dict[str, Callable[..., Figure]] = {
    "overview": overview,
    "heatmap": heatmap,
    "layers": layers,
    "training": training,
    "comparison": comparison,
    "compare_layers": compare_layers,
    "norm_axes": norm_axes,
    "feature_maps": feature_maps,
    "token_heatmap": token_heatmap,
    "sweep_summary": sweep_summary,
    "training_diagnostics": training_diagnostics,
}
