"""The documents in a run folder, as text: metrics.json, stats.csv, history.csv,
comparison.json / .csv and summary.csv. Writers only: they lay out what the core computed
(results, explanations, expectation results) and compute nothing themselves.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from lnexp import __version__, config
from lnexp.numbers import finite_or_none
from lnexp.store.files import SCHEMA_VERSION
from lnexp.store.history_csv import history_csv  # noqa: F401  (documents.history_csv)

if TYPE_CHECKING:  # stats imports torch; `lnexp check` reads run folders without it
    from lnexp.config import Config
    from lnexp.explain import NormLines
    from lnexp.results import (
        AxisStats,
        CompareResult,
        Evaluation,
        LayerStats,
        NormOutcome,
        Precision,
        RunResult,
        SampleStats,
        StageStats,
        TrainDiagnostics,
        TrainResult,
        Verdict,
    )
    from lnexp.sweep.summary import Group


# --------------------------------------------------------------------------- metrics.json

_num = finite_or_none  # JSON has no NaN/Inf: they become null


def _nums(a: np.ndarray) -> list[float | None]:
    return [_num(v) for v in np.asarray(a, dtype=np.float64).tolist()]


def _spread(a: np.ndarray) -> dict[str, float | None]:
    with np.errstate(invalid="ignore"):
        return {"min": _num(np.min(a)), "max": _num(np.max(a)), "mean": _num(np.mean(a))}


AXIS_STATS = ("mean", "var", "var_unbiased", "std")


def axis_dict(s: AxisStats, lists: bool = True) -> dict[str, Any]:
    """One axis: lists with one value per feature/sample (null when `lists` is false), plus
    their min/max/mean in `summary`."""
    return {
        "count": s.count,
        **{k: _nums(getattr(s, k)) if lists else None for k in AXIS_STATS},
        "summary": {k: _spread(getattr(s, k)) for k in AXIS_STATS},
    }


def per_sample_lists(cfg: Config) -> bool:
    """Whether the lists of the within-sample axes (per_sample, per_token, per_instance,
    per_group) are written (n_samples <= output.per_sample_limit)."""
    return bool(cfg.data.n_samples <= cfg.output.per_sample_limit)


def stage_dict(s: StageStats, sample_lists: bool = True) -> dict[str, Any]:
    """One stage (input, pre_norm or post_norm): every axis computed, then `global`."""
    g = s.global_
    return {
        **{axis: axis_dict(a, sample_lists or axis == "per_feature")
           for axis, a in s.axes.items()},
        "global": {k: (_num(v) if isinstance(v, float) else v) for k, v in vars(g).items()},
    }


def axis_labels(cfg: Config) -> dict[str, str]:
    """What one value of each axis is, and what it is over, for this layout and norm."""
    from lnexp.explain import axis_descriptions

    out = {axis: f"one value per {unit}, over {over}"
           for axis, (unit, over) in axis_descriptions(cfg).items()}
    if cfg.data.layout == "features":  # the tutorial's wording, kept
        out["per_feature"] = "one value per feature, over the samples (dim 0)"
        out["per_sample"] = "one value per sample, over its features (dim 1)"
    order = {"per_token": "n-major: index = n*T + t", "per_instance": "n-major: index = n*C + c",
             "per_group": "n-major: index = n*G + g"}
    return {a: f"{text} ({order[a]})" if a in order else text for a, text in out.items()}


def sample_dict(s: SampleStats) -> dict[str, Any]:
    return {"mean": _num(s.mean), "var": _num(s.var), "var_unbiased": _num(s.var_unbiased),
            "std": _num(s.std), "values": _nums(s.values)}


def verdict_dict(v: Verdict) -> dict[str, Any]:
    return {"standardized": v.standardized, "centred": v.centred,
            "unit_variance": v.unit_variance, "mean_abs_max": _num(v.mean_abs_max),
            "var_min": _num(v.var_min), "var_max": _num(v.var_max), "tolerance": v.tolerance}


def layers_dict(layers: LayerStats) -> dict[str, Any]:
    """Per-layer statistics at initialization (depth > 1)."""
    return {
        "loss": "mean over all N x C entries of (output - target)^2, target ~ N(0, 1) drawn "
                "after the data",
        "loss_value": _num(layers.loss),
        "names": list(layers.names),
        "activation_mean": _nums(layers.mean),
        "activation_std": _nums(layers.std),
        "grad_norm": _nums(layers.grad_norm),
        "weight_norm": _nums(layers.weight_norm),
        "grad_norm_first_over_last": _num(layers.first_over_last),
        "sample_spread": _nums(layers.spread),
        "sample_cosine": _nums(layers.cosine),
        "grad_over_weight": _nums(layers.grad_over_weight),
        **({"hidden_rms": _nums(layers.hidden_rms)} if layers.hidden_rms is not None else {}),
        **({"attn_logit_max": _nums(layers.attn_logit_max)}
           if layers.attn_logit_max is not None else {}),
    }


def precision_dict(p: Precision) -> dict[str, Any]:
    """The run against float64 on the same weights and inputs (see results.Precision)."""
    return {
        "dtype": p.dtype,
        "device": p.device,
        "reference": "float64 forward of the same weights and inputs (as drawn, in float32)",
        "post_norm_max_abs_error": _num(p.post_norm[0]),
        "post_norm_mean_abs_error": _num(p.post_norm[1]),
        "output_max_abs_error": _num(p.output[0]),
        "output_mean_abs_error": _num(p.output[1]),
        "arithmetic": "float64 forward of the run's own rounded weights and inputs: the error "
                      "of the run's arithmetic alone",
        "arithmetic_post_norm_max_abs_error": _num(p.post_norm_same_inputs[0]),
        "arithmetic_post_norm_mean_abs_error": _num(p.post_norm_same_inputs[1]),
        "input_max_abs_error": _num(p.input_error[0]),
        "input_mean_abs_error": _num(p.input_error[1]),
        "input_distinct_per_row": _num(p.input_distinct_per_row),
        "input_row_length": p.row_length,
    }


def _eval_dict(e: Evaluation, tr: TrainResult) -> dict[str, Any]:
    bpc = tr.bits_per_char(e)
    return {"step": e.step,
            "eval_mode": {"loss": _num(e.loss_eval_mode), "accuracy": _num(e.acc_eval_mode)},
            "train_mode": {"loss": _num(e.loss_train_mode),
                           "accuracy": _num(e.acc_train_mode)},
            **({"bits_per_char": _num(bpc)} if bpc is not None else {})}


def training_dict(tr: TrainResult) -> dict[str, Any]:
    """Training results: the last evaluation, every evaluation, per-layer means over steps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # means of an empty history are NaN
        tail = np.mean(tr.loss[-max(1, len(tr.loss) // 10):])
        grad_mean = np.mean(tr.grad_norm, axis=0)
        ratio_mean = np.mean(tr.update_ratio, axis=0)
    return {
        "loss": tr.loss_name,
        "steps_done": tr.steps_done,
        "interrupted": tr.interrupted,
        "diverged": tr.diverged,
        "divergence": tr.divergence,
        "diverged_step": tr.diverged_step,
        "layers": list(tr.layer_names),
        "final": {"train_loss_last_10pct": _num(tail),
                  "heldout": _eval_dict(tr.evals[-1], tr),
                  # per block after the last step (lnexp.models.probes)
                  **{k: _nums(v) for k, v in (tr.final_blocks or {}).items()}},
        "evals": [_eval_dict(e, tr) for e in tr.evals],
        "grad_norm_mean": _nums(grad_mean),
        "update_ratio_mean": _nums(ratio_mean),
        **({"diagnostics": diagnostics_dict(tr.diagnostics)}
           if tr.diagnostics and tr.diagnostics.steps else {}),
    }


def diagnostics_dict(d: TrainDiagnostics) -> dict[str, Any]:
    """train.log_every: per key a list per recorded step of one value per block."""
    return {"steps": list(d.steps), "blocks": list(d.blocks),
            **{k: [_nums(row) for row in d.values[k]] for k in d.recorded()},
            "max_position": [[list(p) for p in row] for row in d.max_position],
            "first_massive": d.first_massive(),
            "first_massive_threshold": d.threshold,
            "summary": {k: _nums(v) if isinstance(v, np.ndarray) else v
                        for k, v in d.summary().items()}}


def metrics(result: RunResult, explanation: list[str]) -> dict[str, Any]:
    """The metrics.json document for a RunResult (see docs/contracts.md, "metrics.json contract"),
    without `expectations`: they are evaluated on this document and added by the core."""
    cfg = result.config
    extra: dict[str, Any] = {}
    if result.layers is not None:
        extra["layers"] = layers_dict(result.layers)
    if result.training is not None:
        extra["training"] = training_dict(result.training)
    if result.precision is not None:
        extra["precision"] = precision_dict(result.precision)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "lnexp_version": __version__,
        "config": config.to_dict(cfg),
        "norm": {"name": result.norm.name, "title": result.norm.title,
                 "summary": result.norm.summary},
        "shape": {"n_samples": cfg.data.n_samples, "features": cfg.features,
                  "layout": cfg.data.layout, "dims": cfg.dims()},
        "labels": {
            **axis_labels(cfg),
            "var": "biased variance (divide by n), what the norm layers use",
            "var_unbiased": "unbiased variance (divide by n-1), torch.var's default; null if n<2",
            "std": "sqrt(var), biased",
        },
        "stages": {
            **({"input": stage_dict(result.input_stats, per_sample_lists(cfg))}
               if result.input_stats is not None else {}),
            "pre_norm": stage_dict(result.pre_stats, per_sample_lists(cfg)),
            "post_norm": stage_dict(result.post_stats, per_sample_lists(cfg))},
        "sample": {"index": cfg.sample_index, "pre_norm": sample_dict(result.sample_pre),
                   "post_norm": sample_dict(result.sample_post)},
        "verdict": {axis: verdict_dict(v) for axis, v in result.verdicts.items()},
        "standardizes": result.standardizes,
        "standardized_axes": result.standardized_axes,
        "expected_axis": result.norm.standardizes_axis,
        "numeric_trouble": result.numeric_trouble,
        "explanation": explanation,
        **extra,
    }



def stats_csv(result: RunResult) -> str:
    """stats.csv: long format, one row per (stage, axis, index); index is the flat,
    row-major position in the axis's list (as in metrics.json)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["stage", "axis", "index", "mean", "var", "var_unbiased", "std"])
    lists = per_sample_lists(result.config)
    stages = (("input", result.input_stats), ("pre_norm", result.pre_stats),
              ("post_norm", result.post_stats))
    for stage, st in stages:
        if st is None:
            continue
        for axis, a in st.axes.items():
            if axis != "per_feature" and not lists:
                continue
            for i, row in enumerate(zip(a.mean, a.var, a.var_unbiased, a.std, strict=True)):
                w.writerow([stage, axis, i, *(repr(float(v)) for v in row)])
    return buf.getvalue()


# --------------------------------------------------------------------------- comparison

COMPARISON_CSV_STATS = ("mean", "var", "var_unbiased")


def _norm_entry(o: NormOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": o.name, "title": o.spec.title, "summary": o.spec.summary,
                             "expected_axis": o.spec.axis,
                             "expected_axis_key": o.spec.standardizes_axis}
    if o.result is None:
        return {**entry, "status": "not_defined", "reason": o.reason, "run_dir": None,
                "standardizes": None, "standardized_axes": None, "per_feature": None,
                "per_sample": None, "global": None, "verdict": None}
    post = o.result.post_stats
    g = post.global_
    return {
        **entry,
        "status": "completed",
        "reason": None,
        "run_dir": o.folder,  # relative to the compare folder; holds the usual run files
        "standardizes": o.standardizes,
        "standardized_axes": o.result.standardized_axes,
        **{axis: {k: _spread(getattr(a, k)) for k in COMPARISON_CSV_STATS}
           for axis, a in post.axes.items()},
        "global": {"mean": _num(g.mean), "var": _num(g.var), "rms": _num(g.rms),
                   "min": _num(g.min), "max": _num(g.max)},
        "verdict": {axis: verdict_dict(v) for axis, v in o.result.verdicts.items()},
    }


def comparison(cmp: CompareResult, explanations: list[NormLines], axes: str) -> dict[str, Any]:
    """The comparison.json document for a CompareResult (post-norm statistics per norm), with
    the explanation lines of each norm (explain.compare_lines) and the axes line."""
    cfg = cmp.config
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "compare",
        "lnexp_version": __version__,
        "status": "completed" if cmp.complete else "partial",
        "config": config.to_dict(cfg),
        "norm_order": [o.name for o in cmp.outcomes],
        "shape": {"n_samples": cfg.data.n_samples, "features": cfg.features,
                  "layout": cfg.data.layout, "dims": cfg.dims()},
        "labels": {
            **{axis: f"after the norm, {text}; min/max/mean over the list"
               for axis, text in axis_labels(cfg).items() if axis != "per_group"},
            **({"per_feature": "after the norm, one value per feature over the samples (dim 0); "
                               "min/max/mean over the features",
                "per_sample": "after the norm, one value per sample over its features (dim 1); "
                              "min/max/mean over the samples"}
               if cfg.data.layout == "features" else {}),
            "per_group": "with group only: after the norm, one value per (sample, group); "
                         "min/max/mean over the list",
            "var": "biased variance (divide by n), what the norm layers use",
            "var_unbiased": "unbiased variance (divide by n-1); null if n<2",
            "global": "over every value after the norm",
            "standardizes": "the axes whose every |mean| <= tolerance and every "
                            "|var - 1| <= tolerance, in words, finest first (features, samples, "
                            "features and samples, groups and samples, tokens and samples, "
                            "instances, features and samples, neither); null if not computed",
            "standardized_axes": "the same as metrics.json axis keys (per_feature, ...)",
            "expected_axis_key": "the axis the norm standardizes on this layout "
                                 "(per_feature, per_sample, per_token, per_instance, per_group "
                                 "or neither)",
            "config": "the base config; each norm's run uses it with model.norm=<name>",
        },
        "axes": axes,
        "norms": [{**_norm_entry(o), "explanation": lines}
                  for o, (_, lines) in zip(cmp.outcomes, explanations, strict=True)],
    }


def comparison_csv(doc: dict[str, Any]) -> str:
    """comparison.csv: one row per norm, the comparison.json numbers flattened."""
    from lnexp.registry import AXES

    # per_feature and per_sample first (the tutorial's columns); other axes at the end.
    extra = [a for a in AXES[2:] if any(e.get(a) for e in doc["norms"])]
    header = ["norm", "title", "status", "standardizes"]
    for axis in ("per_feature", "per_sample"):
        for stat in COMPARISON_CSV_STATS:
            header += [f"{axis}_{stat}_min", f"{axis}_{stat}_max"]
    header += ["global_mean", "global_var", "global_rms", "global_min", "global_max",
               "per_feature_standardized", "per_sample_standardized", "run_dir", "reason"]
    for axis in extra:
        for stat in COMPARISON_CSV_STATS:
            header += [f"{axis}_{stat}_min", f"{axis}_{stat}_max"]
        header.append(f"{axis}_standardized")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)

    def cell(v: Any) -> str:
        return "" if v is None else repr(v) if isinstance(v, float) else str(v)

    for e in doc["norms"]:
        row = [e["name"], e["title"], e["status"], e["standardizes"]]
        for axis in ("per_feature", "per_sample"):
            for stat in COMPARISON_CSV_STATS:
                spread = (e[axis] or {}).get(stat) or {}
                row += [spread.get("min"), spread.get("max")]
        g = e["global"] or {}
        row += [g.get(k) for k in ("mean", "var", "rms", "min", "max")]
        v = e["verdict"] or {}
        row += [(v.get(a) or {}).get("standardized") for a in ("per_feature", "per_sample")]
        row += [e["run_dir"], e["reason"]]
        for axis in extra:
            for stat in COMPARISON_CSV_STATS:
                spread = (e.get(axis) or {}).get(stat) or {}
                row += [spread.get("min"), spread.get("max")]
            row.append((v.get(axis) or {}).get("standardized"))
        w.writerow([cell(x) for x in row])
    return buf.getvalue()



# --------------------------------------------------------------------------- sweep summary

SUMMARY_STATS = ("mean", "std", "n", "median", "min", "max")


def summary_rows(groups: list[Group], group_keys: list[str], metrics: list[str]
                 ) -> list[dict[str, Any]]:
    """The summary as plain data (sweep.json `summary`, --json): one row per group."""
    rows = []
    for g in groups:
        row: dict[str, Any] = {**{k: g.params[k] for k in group_keys},
                               "completed": g.completed, "failed": g.failed,
                               "trials": g.trials}
        row["metrics"] = {m: {"mean": _num(g.stats[m].mean), "std": _num(g.stats[m].std),
                              "n": g.stats[m].n, "median": _num(g.stats[m].median),
                              "min": _num(g.stats[m].min), "max": _num(g.stats[m].max)}
                          for m in metrics}
        rows.append(row)
    return rows


def summary_csv(rows: list[dict[str, Any]], group_keys: list[str], metrics: list[str]) -> str:
    """summary.csv: one row per combination of the non-seed keys; per metric mean, std
    (over seeds, n - 1), n (finite values), median, min and max."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*group_keys, "completed", "failed",
                *[f"{m}.{s}" for m in metrics for s in SUMMARY_STATS]])

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else json.dumps(v)

    for r in rows:
        w.writerow([cell(r[k]) for k in group_keys] + [r["completed"], r["failed"]]
                   + [cell(r["metrics"][m].get(s)) for m in metrics for s in SUMMARY_STATS])
    return buf.getvalue()
