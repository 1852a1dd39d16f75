"""Plain-language lines saying what the norm did, derived from the computed statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lnexp.results import CompareResult, RunResult

# (norm name, its lines) for `lnexp compare`: the first line says what it did, the rest are
# norm-specific notes.
NormLines = tuple[str, list[str]]


def _range(a: np.ndarray) -> str:
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = f"{np.nanmin(a):.3g}", f"{np.nanmax(a):.3g}"
    return lo if lo == hi else f"{lo} to {hi}"


def axis_descriptions(cfg: Any) -> dict[str, tuple[str, str]]:
    """Per axis reported for this config: (what one value describes, what it is computed
    over), sizes filled in, e.g. per_instance -> ('(sample, channel)', 'its H·W = 8×8
    positions')."""
    from lnexp import registry
    from lnexp.norms import own_axis

    dims = cfg.dims()
    own, groups = own_axis(cfg.model.norm, cfg.data.layout, cfg.features, cfg.model.groups)
    fill = {**{k: f"{v:,}" for k, v in dims.items()},
            "CG": f"{dims['C'] // groups:,}" if groups else "C/G", "G": str(groups)}
    layout = registry.LAYOUTS[cfg.data.layout]
    return {axis: (layout.axes[axis][0], layout.axes[axis][1].format(**fill))
            for axis in registry.axes(cfg.data.layout, cfg.model.norm, own)}


def lines(result: RunResult) -> list[str]:
    """What a newcomer should read off this run, one sentence per line."""
    cfg = result.config
    n, c = cfg.data.n_samples, cfg.features
    v = result.verdicts
    out: list[str] = []

    trouble = result.numeric_trouble
    if trouble["detected"]:
        out.append(trouble_line(trouble) + "; statistics involving them are NaN.")

    feat, samp = v["per_feature"], v["per_sample"]
    out.append(observed(result))
    out.extend(_norm_specific(result))

    if cfg.data.layout != "features":
        pass  # the variance notes below are the tutorial's, about (N, C) rows
    elif samp.standardized and c > 1:
        s = result.sample_post
        out.append(f"Variances: 'var' is biased (÷n, what the norm layer divides by), so it is "
                   f"~1 after the norm; 'var (unbiased)' divides by n−1 and is var × {c}/{c - 1}"
                   f" — for sample {cfg.sample_index}: {s.var:.6g} × {c}/{c - 1} = "
                   f"{s.var_unbiased:.6g}. That is why the tutorial's torch.var() printed "
                   f"more than 1.")
    elif feat.standardized and n > 1:
        out.append(f"Variances: 'var' is biased (÷n, what the norm layer divides by), so it is "
                   f"~1 after the norm; 'var (unbiased)' divides by n−1 and is var × {n}/{n - 1}.")
    if (samp.unit_variance or feat.unit_variance) and cfg.model.eps > 0:
        out.append(f"Biased variances land slightly below 1 because the norm divides by "
                   f"sqrt(var + eps) with eps={cfg.model.eps:g}.")
    out.extend(_depth(result))
    out.extend(_training(result))
    return out


def _axes_line(result: RunResult) -> str:
    """Images and sequences: which axes are standardized (the norm's own first), and the
    range of the variances of those that are not."""
    desc = axis_descriptions(result.config)
    axes = result.post_stats.axes
    done = result.standardized_axes
    own = result.norm.standardizes_axis
    first = own if own in done else (done[0] if done else None)
    if first is None:
        head = "No axis is standardized"
    else:
        unit, over = desc[first]
        head = f"Every {unit} now has mean 0, variance 1 over {over} ({first})"
        rest = [a for a in done if a != first]
        if rest:
            head += f"; so do {' and '.join(rest)}, which follow from it"
    left = [f"{a} variance {_range(axes[a].var)}" for a in axes if a not in done]
    return head + (": " if first is None else "; not standardized: ") + (
        ", ".join(left) if left else "none") + "."


def _depth(result: RunResult) -> list[str]:
    lay = result.layers
    if lay is None:
        return []
    r = lay.first_over_last
    n = len(lay.names)
    if not np.isfinite(r):
        return [f"The gradient norm ratio first/last block is not finite ({r})."]
    if r < 1e-2:
        verdict = "gradients vanish towards the input"
    elif r > 1e2:
        verdict = "gradients explode towards the input"
    else:
        verdict = "gradients stay within two orders of magnitude across the stack"
    out = [f"At initialization the first block's weight gradient is {r:.3g} × the last "
           f"block's ({lay.grad_norm[0]:.3g} vs {lay.grad_norm[-1]:.3g} over {n} blocks): "
           f"{verdict}. Activation std goes from {lay.std[0]:.3g} (block 1) to "
           f"{lay.std[-1]:.3g} (block {n})."]
    if np.isfinite(lay.cosine[-1]) and lay.cosine[-1] > 0.99:
        out.append(f"The samples collapse: after block {n} their mean pairwise cosine is "
                   f"{lay.cosine[-1]:.4g} and the spread between them {lay.spread[-1]:.3g} "
                   f"(block 1: {lay.spread[0]:.3g}), so every sample is nearly the same "
                   f"vector, whatever the std of its values.")
    return out


def _training(result: RunResult) -> list[str]:
    tr = result.training
    if tr is None:
        return []
    e = tr.evals[-1]
    out = []
    if tr.interrupted:
        out.append(f"Training was interrupted after {tr.steps_done} steps; what was recorded "
                   f"is saved.")
    if tr.diverged:
        out.append(f"Training diverged: {tr.divergence}.")
    if tr.classification and e.acc_eval_mode is not None and e.acc_train_mode is not None:
        gap = e.acc_train_mode - e.acc_eval_mode
        out.append(f"Held-out accuracy at step {e.step}: {e.acc_eval_mode:.3f} in eval mode, "
                   f"{e.acc_train_mode:.3f} in train mode (gap {gap:+.3f}); only BatchNorm "
                   f"behaves differently in the two modes.")
    else:
        out.append(f"Held-out {tr.loss_name} at step {e.step}: {e.loss_eval_mode:.4g} in eval "
                   f"mode, {e.loss_train_mode:.4g} in train mode.")
    return out


def _norm_specific(result: RunResult) -> list[str]:
    cfg = result.config
    m = cfg.model
    n = cfg.data.n_samples
    out: list[str] = []
    if (m.norm == "bn" and m.mode == "train" and n == 2
            and np.allclose(np.abs(result.post), 1.0, atol=1e-2)):
        out.append("With 2 samples, BatchNorm in train mode maps every feature to exactly "
                   "±1: x − mean is ±d for the two samples and the biased std is |d|.")
    if m.norm == "bn" and m.mode == "eval":
        out.append("BatchNorm in eval mode uses its running statistics, which at initialization "
                   "are mean 0 and variance 1, so the output is x / sqrt(1 + eps): almost an "
                   "identity. Train mode uses the batch's own statistics.")
    if m.norm == "rms":
        out.append("RMSNorm only divides by the root mean square; it does not subtract the "
                   "mean, so per-sample means are not 0.")
    if m.norm == "group":
        from lnexp.norms import resolve_groups

        g = resolve_groups(cfg.features, m.groups)
        what = "features" if cfg.data.layout == "features" else "channels"
        out.append(f"GroupNorm with {g} group{'s' if g > 1 else ''} of {cfg.features // g} "
                   f"{what}: each group within a sample is standardized (per_group), hence "
                   f"the whole sample too.")
    if m.norm == "instance":
        out.append("InstanceNorm standardizes each (sample, channel) over its positions "
                   "(per_instance); every channel over the batch and every sample then has "
                   "mean 0, variance 1 too, because the sets are of equal size.")
    out.extend(_new_norms(result))
    if m.norm == "ln" and cfg.data.layout == "image":
        out.append("LayerNorm on images is the GroupNorm paper's LN: one mean and variance "
                   "per sample over (C, H, W) (built as GroupNorm with 1 group, so the affine "
                   "is per channel). ConvNeXt's LayerNorm, over C at each pixel, is a "
                   "different axis.")
    return out


AXES = ("per-feature = one value per feature (column), over the {n} samples (dim 0) - what "
        "BatchNorm pins; per-sample = one value per sample (row), over its {c} features (dim 1) "
        "- what LayerNorm pins.")


def axes_text(cfg: Any) -> str:
    """The 'Axes:' line under the compare table."""
    if cfg.data.layout == "features":
        return AXES.format(n=cfg.data.n_samples, c=cfg.features)
    desc = axis_descriptions(cfg)
    return "; ".join(f"{a.replace('_', '-')} = one value per {unit}, over {over}"
                     for a, (unit, over) in desc.items()) + "."


def compare_lines(cmp: CompareResult) -> list[NormLines]:
    """For `lnexp compare`: per norm, one line saying which axis it normalizes and what the
    numbers show, then its norm-specific notes. Returns (norm name, lines) pairs."""
    out: list[tuple[str, list[str]]] = []
    for o in cmp.outcomes:
        head = f"{o.name} ({o.spec.title}) {o.spec.summary}"
        if o.result is None:
            out.append((o.name, [f"{head}: not computed - {o.why}"]))
            continue
        out.append((o.name, [f"{head}: {observed(o.result, compare=True)}",
                                  *_norm_specific(o.result)]))
    return out


def observed(result: RunResult, compare: bool = False) -> str:
    """The sentence saying which axes the norm standardized, for `lnexp run` (a sentence of
    its own) or `lnexp compare` (compare=True: 'here ...', after the norm's summary).

    The one place that words result.standardized_axes, the same list the verdict table's
    'standardizes' row is made of (results.RunResult.standardizes), so the two cannot
    disagree: the features layout's own sentences only for the axes they name (features,
    samples, both, neither), the per-axis sentence for every other combination."""
    r = result
    done = set(r.standardized_axes)
    unchanged = not r.numeric_trouble["detected"] and np.array_equal(r.pre, r.post,
                                                                      equal_nan=True)
    if r.config.data.layout != "features" or done - {"per_feature", "per_sample"}:
        if unchanged and not done:
            return "here nothing is normalized: output = input." if compare else \
                "Nothing was normalized: the output equals the input."
        line = _axes_line(r)
        return "here " + line[0].lower() + line[1:] if compare else line
    n, c = r.config.data.n_samples, r.config.features
    post = r.post_stats
    feat_var, samp_var = _range(post.per_feature.var), _range(post.per_sample.var)
    if done == {"per_feature", "per_sample"}:
        if compare:
            return (f"here every feature (over {n} samples) and every sample (over {c} "
                    f"features) has mean 0, variance 1.")
        return (f"Both axes are standardized: every sample has mean 0, variance 1 across its "
                f"{c} features, and every feature across the {n} samples.")
    if done == {"per_feature"}:
        if compare:
            return (f"here every feature has mean 0, variance 1 over the {n} samples; samples "
                    f"are not standardized (per-sample variance {samp_var}).")
        return (f"Every feature now has mean 0, variance 1 across the {n} samples; per-sample "
                f"variance ranges {samp_var} and per-sample mean {_range(post.per_sample.mean)}"
                f", so samples are not standardized.")
    if done == {"per_sample"}:
        if compare:
            return (f"here every sample has mean 0, variance 1 over its {c} features; features "
                    f"are not standardized (per-feature variance {feat_var}).")
        if n == 1:
            return (f"Every sample (here the only one) now has mean 0, variance 1 across its "
                    f"{c} features (with one sample, per-feature statistics are just its "
                    f"values).")
        return (f"Every sample now has mean 0, variance 1 across its {c} features; per-feature "
                f"variance ranges {feat_var} and per-feature mean "
                f"{_range(post.per_feature.mean)}, so features are not standardized.")
    if unchanged:
        if compare:
            return (f"here nothing is normalized: output = input (per-feature variance "
                    f"{feat_var}, per-sample variance {samp_var}).")
        return "Nothing was normalized: the output equals the input."
    ps = post.per_sample
    rms = _range(np.sqrt(ps.mean**2 + ps.var))
    if compare:
        return (f"here neither axis is standardized: per-sample mean {_range(ps.mean)}, "
                f"per-sample RMS {rms}, per-feature variance {feat_var}.")
    return (f"No axis is standardized: per-sample mean ranges {_range(ps.mean)}, per-sample "
            f"variance {samp_var}, per-sample RMS {rms}; per-feature variance {feat_var}.")


def trouble_line(trouble: dict[str, Any]) -> str:
    """'NaN/Inf first appears in input: input 5000 Inf, pre_norm 5000 NaN, ...' (no period)."""
    parts = []
    for stage in ("input", "pre_norm", "post_norm"):
        c = trouble[stage]
        kinds = [f"{c[k]} {label}" for k, label in (("nan", "NaN"), ("inf", "Inf")) if c[k]]
        parts.append(f"{stage} {' + '.join(kinds) if kinds else 'clean'}")
    return f"NaN/Inf first appears in {trouble['first_stage']}: " + ", ".join(parts)


def _new_norms(result: RunResult) -> list[str]:
    """Notes for the 2017-2025 norms and for user norms (whose axis is measured)."""
    m = result.config.model
    spec = result.norm
    out: list[str] = []
    if spec.user:
        axis = spec.standardizes_axis
        where = ("each value on its own (no output moves but the perturbed one)"
                 if axis == "neither" else f"{axis}")
        out.append(f"User norm {m.norm}: its statistics are shared over {where}, measured by "
                   f"perturbing one input and seeing which outputs move (docs/norms.md).")
        if spec.mismatch:
            out.append(f"Declared axes differ: {spec.mismatch}.")
    elif m.norm == "dyt":
        out.append(f"DyT computes no statistic: each value becomes gamma·tanh(alpha·x) + beta "
                   f"(alpha starts at {m.dyt_alpha:g}), so no axis is standardized; it only "
                   f"squashes large values.")
    elif m.norm == "batch_renorm" and m.mode == "train":
        out.append("Batch Renorm in train mode outputs the batch-standardized x times r plus d, "
                   "which move it towards the running statistics; at initialization those are "
                   "mean 0, std 1, so (within the clipping) the output is the input itself, "
                   "not standardized.")
    elif m.norm == "frn":
        out.append("FRN divides each (sample, channel) by its RMS over the positions without "
                   "subtracting the mean, then applies its TLU max(y, tau): no axis has mean 0.")
    return out

