"""Expectations: checks on a run's metrics.json that a CI script can fail the build on.

One expectation is `METRIC.REDUCER: {OP: BOUND}`, e.g. ``post_norm.per_sample.mean.abs_max:
{le: 1.0e-6}``:

- METRIC names a value or a list of values in metrics.json. `post_norm.per_sample.mean` is
  short for `stages.post_norm.per_sample.mean` (the long form is accepted too); see
  `metric_paths()` for the full list.
- REDUCER turns it into one number: abs_max, min, max, mean, spread (max - min), first,
  last (e.g. layers.grad_norm.last: the last block's). A scalar is a list of one value.
- OP compares that number with BOUND: le (<=), ge (>=), lt (<), gt (>), approx (|value -
  BOUND| <= tol, tol defaults to 1e-6). Several ops in one mapping are several expectations.

A value that is NaN/Inf (null in metrics.json) fails every comparison. Everything here is
pure: `evaluate` reads a metrics dict and returns plain dicts, so `lnexp run` and `lnexp check`
(on a saved metrics.json) give identical results.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from lnexp.registry import AXES, COMPARATORS

REDUCERS = ("abs_max", "min", "max", "mean", "spread", "first", "last")
OPS = tuple(COMPARATORS)
OP_SYMBOLS = COMPARATORS
# One evaluated expectation: expectation, metric, path, reducer, op, bound, tol, value,
# passed, note (the keys of metrics.json's `expectations` entries).
Result = dict[str, Any]
DEFAULT_TOL = 1e-6

_STAGES = ("input", "pre_norm", "post_norm")
_AXES = AXES  # per_feature, per_sample, per_token, per_instance, per_group
_AXIS_STATS = ("mean", "var", "var_unbiased", "std")
_GLOBAL_STATS = ("count", "mean", "var", "var_unbiased", "std", "rms", "min", "max", "nonfinite")
_SAMPLE_STATS = ("mean", "var", "var_unbiased", "std", "values")
_TROUBLE_STAGES = ("input", "pre_norm", "post_norm")
_TROUBLE_COUNTS = ("nan", "inf", "nonfinite")


def metric_paths() -> dict[str, str]:
    """Every metric an expectation may name: short form -> path in metrics.json."""
    out: dict[str, str] = {}
    for stage in _STAGES:
        for axis in _AXES:
            for stat in _AXIS_STATS:
                out[f"{stage}.{axis}.{stat}"] = f"stages.{stage}.{axis}.{stat}"
        for stat in _GLOBAL_STATS:
            out[f"{stage}.global.{stat}"] = f"stages.{stage}.global.{stat}"
        if stage == "input":
            continue  # the chosen sample is shown before and after the norm only
        for stat in _SAMPLE_STATS:
            out[f"sample.{stage}.{stat}"] = f"sample.{stage}.{stat}"
    for stage in _TROUBLE_STAGES:
        for count in _TROUBLE_COUNTS:
            out[f"numeric_trouble.{stage}.{count}"] = f"numeric_trouble.{stage}.{count}"
    # Deeper models (depth > 1) and training runs; absent keys evaluate as missing (NaN).
    for stat in ("activation_mean", "activation_std", "grad_norm", "weight_norm",
                 "grad_norm_first_over_last", "loss_value", "sample_spread", "sample_cosine",
                 "grad_over_weight", "hidden_rms", "attn_logit_max"):
        out[f"layers.{stat}"] = f"layers.{stat}"
    for stat in ("post_norm_max_abs_error", "post_norm_mean_abs_error", "output_max_abs_error",
                 "output_mean_abs_error", "arithmetic_post_norm_max_abs_error",
                 "arithmetic_post_norm_mean_abs_error", "input_max_abs_error",
                 "input_mean_abs_error", "input_distinct_per_row"):
        out[f"precision.{stat}"] = f"precision.{stat}"
    for mode in ("eval_mode", "train_mode"):
        for stat in ("accuracy", "loss"):
            out[f"training.heldout.{mode}.{stat}"] = f"training.final.heldout.{mode}.{stat}"
    out["training.train_loss"] = "training.final.train_loss_last_10pct"
    out["training.grad_norm_mean"] = "training.grad_norm_mean"
    out["training.update_ratio_mean"] = "training.update_ratio_mean"
    for stat in ("hidden_rms", "attn_logit_max"):  # per block, after the last step
        out[f"training.{stat}"] = f"training.final.{stat}"
    out["training.heldout.bits_per_char"] = "training.final.heldout.bits_per_char"  # charlm
    for stat in DIAGNOSTIC_SUMMARY:  # train.log_every, one value per block
        out[f"training.diagnostics.{stat}"] = f"training.diagnostics.summary.{stat}"
    return out


# train.log_every's summary in metrics.json (lnexp.store.documents.diagnostics_dict).
DIAGNOSTIC_SUMMARY = ("residual_rms_first", "residual_rms_last", "residual_rms_growth",
                      "max_over_median_last", "max_over_median_peak", "excess_kurtosis_last",
                      "attn_logit_max_last", "first_massive_step")


METRICS = metric_paths()
_LONG = {v: v for v in METRICS.values()}


def split_key(key: str) -> tuple[str, str, str]:
    """`METRIC.REDUCER` -> (metric as written, metrics.json path, reducer); ValueError if bad."""
    metric, dot, reducer = key.strip().rpartition(".")
    if not dot or not metric:
        raise ValueError(f"expected METRIC.REDUCER, e.g. post_norm.per_sample.mean.abs_max, "
                         f"got {key!r}")
    problems = []
    path = METRICS.get(metric) or _LONG.get(metric)
    if path is None:
        close = difflib.get_close_matches(metric, list(METRICS), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"unknown metric '{metric}'{hint}; expected STAGE.AXIS.STAT like "
                        f"post_norm.per_sample.mean, STAGE.global.STAT, sample.STAGE.STAT, "
                        f"numeric_trouble.STAGE.COUNT, layers.STAT, precision.STAT or "
                        f"training.heldout.MODE.STAT "
                        f"(see docs/contracts.md, Expectations)")
    if reducer not in REDUCERS:
        close = difflib.get_close_matches(reducer, REDUCERS, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"unknown reducer '{reducer}'{hint}; expected one of "
                        f"{', '.join(REDUCERS)}")
    if problems:
        raise ValueError("; ".join(problems))
    return metric, path, reducer  # type: ignore[return-value]


def check_key(key: str) -> str:
    """Validator for an `expect:` key (used by the config schema)."""
    split_key(key)
    return key.strip()


# --------------------------------------------------------------------------- --expect text

_CLI = re.compile(
    r"^\s*(?P<key>[^\s<>=~]+)\s*"
    r"(?:(?P<sym><=|>=|~=|<|>)|\s(?P<word>le|ge|lt|gt|approx)\s)\s*"
    r"(?P<value>[^\s]+)"
    r"(?:\s+(?:tol|\+-|±)\s+(?P<tol>[^\s]+))?\s*$")
_SYMBOL_OPS = {v: k for k, v in OP_SYMBOLS.items()}


def parse_cli(text: str) -> tuple[str, dict[str, Any]]:
    """`'post_norm.per_sample.mean.abs_max <= 1e-6'` -> (key, {'le': 1e-06}).

    Forms: `KEY OP VALUE` with OP one of <= >= < > ~= or le ge lt gt approx, and for approx an
    optional `tol TOL`. Raises ValueError with a one-line reason. Key names are checked by the
    schema, like the config's own `expect:` keys.
    """
    m = _CLI.match(text)
    if not m:
        raise ValueError("expected 'METRIC.REDUCER OP VALUE', e.g. "
                         "'post_norm.per_sample.mean.abs_max <= 1e-6' or "
                         "'post_norm.per_sample.var.mean approx 1 tol 1e-3'")
    op = m["word"] or _SYMBOL_OPS[m["sym"]]
    bound: dict[str, Any] = {op: _number(m["value"], "value")}
    if m["tol"] is not None:
        if op != "approx":
            raise ValueError(f"tol goes with approx only, not with {op}")
        bound["tol"] = _number(m["tol"], "tol")
    return m["key"], bound


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if math.isnan(value):
        raise ValueError(f"{what} is NaN; expected a number")
    return value


# --------------------------------------------------------------------------- evaluation

def _lookup(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def reduce(values: Any, reducer: str) -> float:
    """Apply a reducer to a number or a list of numbers; None (NaN/Inf in JSON) gives NaN."""
    xs = values if isinstance(values, list) else [values]
    if not xs or any(x is None or isinstance(x, bool) for x in xs):
        return math.nan
    xs = [float(x) for x in xs]
    if any(not math.isfinite(x) for x in xs):
        return math.nan
    if reducer == "abs_max":
        return max(abs(x) for x in xs)
    if reducer == "min":
        return min(xs)
    if reducer == "max":
        return max(xs)
    if reducer == "mean":
        return math.fsum(xs) / len(xs)
    if reducer == "spread":
        return max(xs) - min(xs)
    if reducer == "first":
        return xs[0]
    if reducer == "last":
        return xs[-1]
    raise ValueError(f"unknown reducer {reducer!r}")


def _summary_path(path: str) -> str:
    stages, stage, axis, stat = path.split(".")
    return f"{stages}.{stage}.{axis}.summary.{stat}"


def reduce_summary(summary: Mapping[str, Any], reducer: str) -> float:
    """A reducer from a list's {min, max, mean} summary (every reducer needs only these)."""
    lo, hi, mean = (summary.get(k) for k in ("min", "max", "mean"))
    if lo is None or hi is None or mean is None:
        return math.nan
    return {"abs_max": max(abs(lo), abs(hi)), "min": lo, "max": hi, "mean": mean,
            "spread": hi - lo}.get(reducer, math.nan)  # first/last: not in a summary


def compare(value: float, op: str, bound: float, tol: float | None = None) -> bool:
    """The comparison; NaN never passes."""
    if not math.isfinite(value):
        return False
    if op == "le":
        return value <= bound
    if op == "ge":
        return value >= bound
    if op == "lt":
        return value < bound
    if op == "gt":
        return value > bound
    if op == "approx":
        return abs(value - bound) <= (DEFAULT_TOL if tol is None else tol)
    raise ValueError(f"unknown comparator {op!r}")


def evaluate(doc: Mapping[str, Any],
             expect: Mapping[str, Mapping[str, Any]]) -> list[Result]:
    """Evaluate an `expect:` block (key -> {op: bound, tol?}) on a metrics.json document.

    Returns one dict per (key, op): expectation, metric, path, reducer, op, bound, tol, value
    (None when NaN/Inf), passed, and note (why it failed when the value is missing).
    """
    results = []
    for key, bounds in expect.items():
        metric, path, reducer = split_key(key)
        note = None
        try:
            value = _value(doc, path, reducer)
            if math.isnan(value):
                note = "the metric holds NaN/Inf (see numeric_trouble)"
        except KeyError:
            value, note = math.nan, f"{path} is not in this metrics.json"
        tol = bounds.get("tol")
        for op in OPS:
            bound = bounds.get(op)
            if bound is None:
                continue
            t = (DEFAULT_TOL if tol is None else tol) if op == "approx" else None
            text = f"{key} {OP_SYMBOLS[op]} {bound:g}" + (f" ± {t:g}" if t is not None else "")
            results.append({
                "expectation": text, "metric": metric, "path": path, "reducer": reducer,
                "op": op, "bound": bound, "tol": t,
                "value": value if math.isfinite(value) else None,
                "passed": compare(value, op, bound, t), "note": note,
            })
    return results


def all_passed(results: list[Result]) -> bool:
    """True when every expectation passed (and when there are none)."""
    return all(r["passed"] for r in results)


def metric_value(doc: Mapping[str, Any], key: str) -> float:
    """The number `METRIC.REDUCER` names in a metrics.json document (what `lnexp sweep
    --metric` aggregates); NaN when it is missing or holds NaN/Inf."""
    _, path, reducer = split_key(key)
    try:
        return _value(doc, path, reducer)
    except KeyError:
        return math.nan


def _value(doc: Mapping[str, Any], path: str, reducer: str) -> float:
    """Reduce the value at `path`; KeyError when the document has no such key."""
    found = _lookup(doc, path)
    if found is None and path.count(".") == 3 and path.startswith("stages."):
        # A per-sample list left out of a large run: its summary has min/max/mean.
        return reduce_summary(_lookup(doc, _summary_path(path)), reducer)
    return reduce(found, reducer)
