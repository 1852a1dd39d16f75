"""Plain-language lines saying what the norm did, derived from the computed statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lnexp.results import CompareResult, NormOutcome, RunResult

# (norm name, its lines) for `lnexp compare`: the first line says what it did, the rest are
# norm-specific notes.
NormLines = tuple[str, list[str]]


def _range(a: np.ndarray) -> str:
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = f"{np.nanmin(a):.3g}", f"{np.nanmax(a):.3g}"
    return lo if lo == hi else f"{lo} to {hi}"


def standardizes(features: bool, samples: bool) -> str:
    """The axis verdict in words: 'features', 'samples', 'features and samples', 'neither'."""
    if features and samples:
        return "features and samples"
    return "features" if features else "samples" if samples else "neither"


def lines(result: RunResult) -> list[str]:
    """What a newcomer should read off this run, one sentence per line."""
    cfg = result.config
    n, c = cfg.data.n_samples, cfg.features
    post = result.post_stats
    v = result.verdicts
    out: list[str] = []

    trouble = result.numeric_trouble
    if trouble["detected"]:
        out.append(trouble_line(trouble) + "; statistics involving them are NaN.")

    feat, samp = v["per_feature"], v["per_sample"]
    if samp.standardized and feat.standardized:
        out.append(f"Both axes are standardized: every sample has mean 0, variance 1 across its "
                   f"{c} features, and every feature across the {n} samples.")
    elif samp.standardized and n == 1:
        out.append(f"The sample now has mean 0, variance 1 across its {c} features "
                   f"(with one sample, per-feature statistics are just its values).")
    elif samp.standardized:
        out.append(f"Every sample now has mean 0, variance 1 across its {c} features; "
                   f"per-feature variance ranges {_range(post.per_feature.var)} "
                   f"and per-feature mean {_range(post.per_feature.mean)}, so features are "
                   f"not standardized.")
    elif feat.standardized:
        out.append(f"Every feature now has mean 0, variance 1 across the {n} samples; "
                   f"per-sample variance ranges {_range(post.per_sample.var)} "
                   f"and per-sample mean {_range(post.per_sample.mean)}, so samples are "
                   f"not standardized.")
    elif not trouble["detected"] and np.array_equal(result.pre, result.post):
        out.append("Nothing was normalized: the output equals the input.")
    else:
        ps = post.per_sample
        rms = np.sqrt(ps.mean**2 + ps.var)
        out.append(f"No axis is standardized: per-sample mean ranges {_range(ps.mean)}, "
                   f"per-sample variance {_range(ps.var)}, per-sample RMS {_range(rms)}; "
                   f"per-feature variance {_range(post.per_feature.var)}.")
    out.extend(_norm_specific(result))

    if samp.standardized and c > 1:
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
        out.append(f"GroupNorm with {g} group{'s' if g > 1 else ''} of {cfg.features // g} "
                   f"features: each group "
                   f"within a sample is standardized, hence the whole sample too.")
    if m.norm == "instance":
        out.append("InstanceNorm1d would read a 2-D (N, C) tensor as one unbatched sample; lnexp "
                   "reshapes it to (N, 1, C), so each sample is normalized over its features "
                   "(LayerNorm's axis) with one scalar weight and bias.")
    return out


AXES = ("per-feature = one value per feature (column), over the {n} samples (dim 0) - what "
        "BatchNorm pins; per-sample = one value per sample (row), over its {c} features (dim 1) "
        "- what LayerNorm pins.")


def compare_lines(cmp: CompareResult) -> list[NormLines]:
    """For `lnexp compare`: per norm, one line saying which axis it normalizes and what the
    numbers show, then its norm-specific notes. Returns (norm name, lines) pairs."""
    out: list[tuple[str, list[str]]] = []
    for o in cmp.outcomes:
        head = f"{o.name} ({o.spec.title}) {o.spec.summary}"
        if o.result is None:
            out.append((o.name, [f"{head}: not computed - {o.why}"]))
            continue
        out.append((o.name, [f"{head}: {_observed(o)}", *_norm_specific(o.result)]))
    return out


def _observed(o: NormOutcome) -> str:
    r = o.result
    n, c = r.config.data.n_samples, r.config.features
    post = r.post_stats
    feat_var, samp_var = _range(post.per_feature.var), _range(post.per_sample.var)
    if o.standardizes == "features and samples":
        return (f"here every feature (over {n} samples) and every sample (over {c} features) "
                f"has mean 0, variance 1.")
    if o.standardizes == "features":
        return (f"here every feature has mean 0, variance 1 over the {n} samples; samples are "
                f"not standardized (per-sample variance {samp_var}).")
    if o.standardizes == "samples":
        return (f"here every sample has mean 0, variance 1 over its {c} features; features are "
                f"not standardized (per-feature variance {feat_var}).")
    if np.array_equal(r.pre, r.post, equal_nan=True):
        return (f"here nothing is normalized: output = input (per-feature variance {feat_var}, "
                f"per-sample variance {samp_var}).")
    ps = post.per_sample
    rms = np.sqrt(ps.mean**2 + ps.var)
    return (f"here neither axis is standardized: per-sample mean {_range(ps.mean)}, per-sample "
            f"RMS {_range(rms)}, per-feature variance {feat_var}.")


def trouble_line(trouble: dict[str, Any]) -> str:
    """'NaN/Inf first appears in input: input 5000 Inf, pre_norm 5000 NaN, ...' (no period)."""
    parts = []
    for stage in ("input", "pre_norm", "post_norm"):
        c = trouble[stage]
        kinds = [f"{c[k]} {label}" for k, label in (("nan", "NaN"), ("inf", "Inf")) if c[k]]
        parts.append(f"{stage} {' + '.join(kinds) if kinds else 'clean'}")
    return f"NaN/Inf first appears in {trouble['first_stage']}: " + ", ".join(parts)
