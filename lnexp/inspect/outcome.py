"""What `lnexp inspect` measured: plain dataclasses (numpy arrays, no torch), and the JSON
document built from them (`inspect.json`, `--json`).

Bounded output whatever the number of inputs: per-dim lists have one entry per normalized
feature (dropped above `dim_limit`, summaries kept); per-token statistics are summarised
(exact min / max / mean over every real token, quantiles of the variance from a log-spaced
histogram with ~1% resolution, and the tokens with the largest variance), never listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)


@dataclass(frozen=True)
class Token:
    """Where a row of a norm's input came from, and its value there."""

    input: int  # index of the input (sentence, image, row of the tensor file)
    position: int | None  # token position (text) / flattened spatial position; None for (N, D)
    token: str | None  # the token's text for text models, e.g. "[CLS]"
    value: float  # the value carried (signed), or the token's variance in `largest_var`


@dataclass(frozen=True)
class TokenStats:
    """Per-token mean and (biased, ÷dims) variance over the normalized dims, summarised."""

    count: int  # real tokens (padding excluded)
    mean_min: float
    mean_max: float
    mean_mean: float
    var_min: float
    var_max: float
    var_mean: float
    var_quantiles: dict[str, float]  # "p1", "p25", "p50", "p75", "p99": histogram, ~1%
    largest_var: list[Token]  # tokens with the largest variance, largest first


@dataclass(frozen=True)
class DimStats:
    """Per hidden dim (channel), over every real token: mean, biased variance, max |x|."""

    count: int  # tokens each value is over
    mean: np.ndarray
    var: np.ndarray
    absmax: np.ndarray
    carriers: list[list[Token]]  # per dim: the tokens with the largest |x| there


@dataclass(frozen=True)
class Outlier:
    dim: int
    absmax: float
    ratio: float  # absmax / median over dims of the per-dim absmax
    tokens: list[Token]


@dataclass(frozen=True)
class StageStats:
    """A norm's input (pre) or output (post)."""

    per_token: TokenStats
    per_dim: DimStats
    outliers: list[Outlier]  # top-k dims by absmax, largest first

    @property
    def median_absmax(self) -> float:
        return float(np.median(self.per_dim.absmax))


@dataclass(frozen=True)
class Entry:
    dim: int
    value: float
    rank: int | None = None  # 1 = largest |value| of the layer's parameter


@dataclass(frozen=True)
class ParamStats:
    """A learned weight (γ) or bias (β): extremes by |value| and the values at outlier dims."""

    values: np.ndarray  # flattened
    largest: list[Entry]
    smallest_abs: list[Entry]
    at_outliers: list[Entry]  # at the input's outlier dims, with their rank by |value|


@dataclass(frozen=True)
class QuantStats:
    """Symmetric int8 (−127…127, round half to even) of the norm's input. Per tensor: one scale
    for each call's input (its max |x| / 127, as dynamic quantization does at inference);
    per token: one scale per token. SQNR = 10·log10(Σx² / Σ(x − q(x))²) over every real token."""

    per_tensor_sqnr_db: float
    per_token_sqnr_db: float
    per_tensor_zero_fraction: float  # entries that quantize to 0
    per_token_zero_fraction: float


@dataclass(frozen=True)
class BatchNormCheck:
    """A BatchNorm layer's train-mode output (batch statistics) vs its eval-mode output (running
    statistics), on the same input, batch by batch."""

    batches: int  # batches compared
    skipped: int  # batches where train mode is not defined (one value per channel)
    rel_rms_diff: float | None  # rms(train − eval) / rms(eval)
    max_abs_diff: float | None


@dataclass(frozen=True)
class ModelBatchNormCheck:
    """The whole model with its BatchNorms in train mode vs all in eval mode."""

    batch_size: int
    batches: int
    skipped: int
    output_rel_rms_diff: float | None
    predictions: int | None  # inputs compared when the output looks like class logits
    predictions_changed: int | None


@dataclass(frozen=True)
class Tails:
    """Over every real entry (tokens × dims) of a norm's input or output
    (lnexp.inspect.kurtosis)."""

    count: int
    kurtosis: float  # Pearson's: E[(x − μ)⁴] / σ⁴ (a Gaussian has 3); NaN when σ = 0
    absmax: float


@dataclass(frozen=True)
class LayerReport:
    index: int  # forward order
    name: str
    type: str
    found_by: str
    axis: str  # "last" (LayerNorm-like) or "channel" (BatchNorm-like)
    normalized_shape: tuple[int, ...] | None
    eps: float | None
    calls: int  # forward calls seen (a shared module is called more than once per input)
    pre: StageStats
    post: StageStats | None  # None: the output was not measured (see core._tensor)
    weight: ParamStats | None
    bias: ParamStats | None
    quant: QuantStats
    batchnorm: BatchNormCheck | None
    role: str | None = None  # lnexp.inspect.roles: pre-attention, post-FFN, q, final, conv-BN...
    weight_form: str = "w"  # "1+w": the module scales by 1 + weight (Gemma), `weight` shows that
    running: Any = None  # BatchNorm: lnexp.inspect.bn_running.RunningGap on these inputs
    tails_pre: Tails | None = None  # kurtosis and max |x| of the input
    tails_post: Tails | None = None  # ... of the output (None: not measured)


@dataclass(frozen=True)
class InspectOutcome:
    model: dict[str, Any]  # spec, name, class, parameters, source
    inputs: dict[str, Any]  # kind, description, count, tokens, batch_size, padding_masked
    options: dict[str, Any]
    layers: list[LayerReport]
    unused: list[str]  # norm modules found but never called on these inputs
    batchnorm_model: ModelBatchNormCheck | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    predictions: dict[str, Any] | None = None  # what a packaged CNN's output says (media.py)
    massive: list[Any] = field(default_factory=list)  # massive.MassiveBlock, per block
    curves: list[Any] = field(default_factory=list)  # curves.Curve, per selected layer
    blocks: list[Any] = field(default_factory=list)  # massive.Block: the repeated blocks
    ablation: Any | None = None  # ablate.Ablation, with --ablate


# --------------------------------------------------------------------------- JSON

def _num(x: float | None) -> float | None:
    """JSON has no NaN/Inf: they become null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _nums(a: np.ndarray) -> list[float | None]:
    return [_num(v) for v in np.asarray(a, dtype=np.float64).tolist()]


def _token(t: Token) -> dict[str, Any]:
    return {"input": t.input, "position": t.position, "token": t.token, "value": _num(t.value)}


def _per_token(s: TokenStats) -> dict[str, Any]:
    return {"count": s.count,
            "mean": {"min": _num(s.mean_min), "max": _num(s.mean_max), "mean": _num(s.mean_mean)},
            "var": {"min": _num(s.var_min), "max": _num(s.var_max), "mean": _num(s.var_mean),
                    **{k: _num(v) for k, v in s.var_quantiles.items()}},
            "largest_var": [_token(t) for t in s.largest_var]}


def _summary(a: np.ndarray) -> dict[str, float | None]:
    return {"min": _num(np.min(a)), "max": _num(np.max(a)), "median": _num(np.median(a))}


def _per_dim(s: DimStats, dim_limit: int) -> dict[str, Any]:
    lists = s.mean.size <= dim_limit
    return {"count": s.count, "dims": int(s.mean.size),
            "mean": _nums(s.mean) if lists else None,
            "var": _nums(s.var) if lists else None,
            "absmax": _nums(s.absmax) if lists else None,
            "summary": {"mean": _summary(s.mean), "var": _summary(s.var),
                        "absmax": _summary(s.absmax)}}


def _stage(s: StageStats, dim_limit: int) -> dict[str, Any]:
    return {"per_token": _per_token(s.per_token), "per_dim": _per_dim(s.per_dim, dim_limit),
            "outliers": [{"dim": o.dim, "absmax": _num(o.absmax), "ratio": _num(o.ratio),
                          "tokens": [_token(t) for t in o.tokens]} for o in s.outliers]}


def _entries(es: list[Entry]) -> list[dict[str, Any]]:
    return [{"dim": e.dim, "value": _num(e.value), **({"rank": e.rank} if e.rank else {})}
            for e in es]


def _param(p: ParamStats | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"largest": _entries(p.largest), "smallest_abs": _entries(p.smallest_abs),
            "at_outliers": _entries(p.at_outliers)}


def layer_dict(r: LayerReport, dim_limit: int) -> dict[str, Any]:
    q = r.quant
    bn = r.batchnorm
    return {
        "name": r.name, "type": r.type, "role": r.role, "found_by": r.found_by, "axis": r.axis,
        "normalized_shape": list(r.normalized_shape) if r.normalized_shape else None,
        "eps": _num(r.eps), "calls": r.calls,
        "pre": _stage(r.pre, dim_limit), "post": _stage(r.post, dim_limit) if r.post else None,
        "weight": _param(r.weight), "weight_form": r.weight_form, "bias": _param(r.bias),
        "quant": {"per_tensor_sqnr_db": _num(q.per_tensor_sqnr_db),
                  "per_token_sqnr_db": _num(q.per_token_sqnr_db),
                  "per_tensor_zero_fraction": _num(q.per_tensor_zero_fraction),
                  "per_token_zero_fraction": _num(q.per_token_zero_fraction)},
        "kurtosis": {stage: None if t is None else {"kurtosis": _num(t.kurtosis),
                                                     "absmax": _num(t.absmax)}
                     for stage, t in (("pre", r.tails_pre), ("post", r.tails_post))},
        "batchnorm": None if bn is None else {
            "batches": bn.batches, "skipped": bn.skipped,
            "rel_rms_diff": _num(bn.rel_rms_diff), "max_abs_diff": _num(bn.max_abs_diff)},
        "running": r.running.as_dict() if r.running is not None else None,
    }


def document(o: InspectOutcome) -> dict[str, Any]:
    """The inspect.json document (also what `--json` prints)."""
    from lnexp import __version__

    dim_limit = int(o.options.get("dim_limit", 8192))
    m = o.batchnorm_model
    return {
        "schema_version": SCHEMA_VERSION, "kind": "inspect", "lnexp_version": __version__,
        "model": o.model, "inputs": o.inputs, "options": o.options,
        "labels": {
            "per_token": "one value per real token (padding excluded), over the layer's "
                         "normalized dims; summarised: min/max/mean exact, p1..p99 from a "
                         "log-spaced histogram (~1% resolution)",
            "per_dim": "one value per hidden dim (channel), over every real token",
            "var": "biased (÷n), what the norm layers divide by",
            "post": "null when the layer's output could not be measured (not a floating-point "
                    "tensor lnexp can find in what the layer returns)",
            "ratio": "absmax / median over dims of the per-dim absmax",
            "quant": "symmetric int8: per tensor = one scale per forward call's input, "
                     "per token = one scale per token",
        },
        "layers": [layer_dict(r, dim_limit) for r in o.layers],
        "unused": o.unused,
        "batchnorm_model": None if m is None else {
            "batch_size": m.batch_size, "batches": m.batches, "skipped": m.skipped,
            "output_rel_rms_diff": _num(m.output_rel_rms_diff),
            "predictions": m.predictions, "predictions_changed": m.predictions_changed},
        "predictions": o.predictions,
        # each measurement writes its own entry (.as_dict): outcome.py imports none of them
        "massive_activations": [b.as_dict(_num) for b in o.massive],
        "s_curves": [c.as_dict(_num) for c in o.curves],
        "ablation": o.ablation.as_dict(_num) if o.ablation is not None else None,
        "notes": o.notes,
        "seconds": round(o.seconds, 3),
    }
