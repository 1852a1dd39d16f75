"""`figures/batchnorm.png`: each BatchNorm layer's running statistics vs the statistics of the
given inputs, and its train- vs eval-mode output, over depth (lnexp.inspect.bn_running)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from matplotlib.figure import Figure

from lnexp.inspect.figures import POST, PRE, _new_figure, _title
from lnexp.inspect.outcome import InspectOutcome

MAX_NAMED = 60  # tick labels with every layer name up to this many layers


def batchnorm_running(o: InspectOutcome) -> Figure | None:
    """Three panels over the BN layers in forward order: the mean gap (|μ_data − μ_running| in
    running standard deviations, per channel: median, p90, max), the variance ratio
    (σ²_data / σ²_running per channel: median, p10–p90, min–max; log scale) and the layer's
    output change in train mode vs eval mode. None when no layer has running statistics."""
    rows = [r for r in o.layers if r.running is not None]
    if not rows:
        return None
    x = np.arange(len(rows))
    g = {k: np.array([r.running.mean_gap[k] for r in rows]) for k in ("median", "p90", "max")}
    v = {k: np.array([r.running.var_ratio[k] for r in rows])
         for k in ("median", "p10", "p90", "min", "max")}
    tv = np.array([r.batchnorm.rel_rms_diff if r.batchnorm and r.batchnorm.rel_rms_diff
                   is not None else np.nan for r in rows])
    fig = _new_figure(max(11.0, 3.0 + 0.17 * len(rows)), 10)
    axes = fig.subplots(3, 1, sharex=True)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.88, bottom=0.16, hspace=0.35)
    ax = axes[0]
    ax.fill_between(x, 0, g["p90"], color=PRE, alpha=0.18, label="channels up to p90")
    ax.plot(x, g["median"], "o-", color=PRE, ms=3, label="median channel")
    ax.plot(x, g["max"], "v", color="#d62728", ms=4, label="largest channel")
    ax.set_ylabel("|μ data − μ running|\n/ σ running")
    ax.set_ylim(0, max(float(np.nanmax(g["max"])), 1e-9) * 1.35)  # room for the legend
    ax.set_title("mean: how far the data's channel mean sits from the running mean",
                 fontsize=10, loc="left")
    ax = axes[1]
    ax.fill_between(x, v["min"], v["max"], color=POST, alpha=0.12, label="min–max")
    ax.fill_between(x, v["p10"], v["p90"], color=POST, alpha=0.3, label="p10–p90")
    ax.plot(x, v["median"], "o-", color=POST, ms=3, label="median channel")
    ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_yscale("log", base=2)
    lo, hi = float(np.nanmin(v["min"])), float(np.nanmax(v["max"]))
    ax.set_ylim(min(lo, 0.5) / 1.5, max(hi, 2.0) * (hi / min(lo, 0.5)) ** 0.3)
    ax.set_ylabel("σ² data / σ² running")
    ax.set_title("variance: 1 when the data's spread matches the running variance",
                 fontsize=10, loc="left")
    ax = axes[2]
    ax.bar(x, tv * 100, color="0.45", width=0.7)
    ax.set_ylabel("train vs eval\noutput, rms %")
    m = o.batchnorm_model
    whole = ""
    if m is not None and m.output_rel_rms_diff is not None:
        whole = f"\nwhole model in train mode: output changes {m.output_rel_rms_diff:.0%} (rms)"
        if m.predictions:
            whole += f", {m.predictions_changed} of {m.predictions} predictions change"
    ax.set_title(f"output change, each layer alone in train mode (batch "
                 f"{o.options['batch_size']}){whole}", fontsize=10, loc="left")
    for a in axes[:2]:
        a.legend(fontsize=7, loc="upper left", ncol=3, framealpha=0.85)
    for a in axes:
        a.grid(True, axis="y", alpha=0.3)
    if len(rows) <= MAX_NAMED:
        axes[2].set_xticks(x, [r.name for r in rows], rotation=90,
                           fontsize=6 if len(rows) > 20 else 8)
    roles = Counter(r.role or "no role" for r in rows)
    axes[2].set_xlabel("BatchNorm layer, forward order (role: "
                       + ", ".join(f"{k} ×{n}" for k, n in roles.most_common()) + ")")
    axes[2].set_xlim(-0.6, len(rows) - 0.4)
    samples = rows[0].running.samples
    fig.suptitle(f"{_title(o)}\nBatchNorm running statistics vs these inputs "
                 f"({samples:,} values per channel at the first layer)", fontsize=11, x=0.09,
                 ha="left")
    return fig
