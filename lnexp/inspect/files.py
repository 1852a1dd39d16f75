"""The run folder of `lnexp inspect`: inspect.json (the contract, written last), layers.csv
(one row per norm layer), dims.csv (one row per layer, stage and dim) and figures/*.png."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from lnexp.inspect.outcome import InspectOutcome, _num, document
from lnexp.store.figures import save_figure
from lnexp.store.files import RunFolder, create_run_dir, write_atomic

LAYER_COLUMNS = (
    "index", "name", "type", "dims", "eps", "tokens",
    "pre_token_var_p50", "pre_token_var_max", "post_token_var_p50", "post_token_var_max",
    "pre_top_dim", "pre_top_absmax", "pre_top_ratio", "post_top_dim", "post_top_absmax",
    "post_top_ratio", "weight_at_pre_top", "weight_rank_at_pre_top", "weight_min_abs_dim",
    "weight_min_abs", "weight_max_abs_dim", "weight_max_abs", "per_tensor_sqnr_db",
    "per_token_sqnr_db", "per_tensor_zero_fraction", "bn_rel_rms_diff", "role",
)


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        x = _num(v)
        return "" if x is None else repr(x)
    return "" if v is None else v


def layers_csv(o: InspectOutcome) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LAYER_COLUMNS)
    for r in o.layers:
        pt = r.pre.outliers[0]
        qt = r.post.outliers[0] if r.post else None  # None: the output was not measured
        at = r.weight.at_outliers[0] if r.weight and r.weight.at_outliers else None
        row = [r.index, r.name, r.type, r.pre.per_dim.mean.size, r.eps, r.pre.per_token.count,
               r.pre.per_token.var_quantiles["p50"], r.pre.per_token.var_max,
               r.post.per_token.var_quantiles["p50"] if r.post else None,
               r.post.per_token.var_max if r.post else None,
               pt.dim, pt.absmax, pt.ratio, qt.dim if qt else None, qt.absmax if qt else None,
               qt.ratio if qt else None,
               at.value if at else None, at.rank if at else None,
               r.weight.smallest_abs[0].dim if r.weight else None,
               r.weight.smallest_abs[0].value if r.weight else None,
               r.weight.largest[0].dim if r.weight else None,
               r.weight.largest[0].value if r.weight else None,
               r.quant.per_tensor_sqnr_db, r.quant.per_token_sqnr_db,
               r.quant.per_tensor_zero_fraction,
               r.batchnorm.rel_rms_diff if r.batchnorm else None, r.role]
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def dims_csv(o: InspectOutcome) -> str:
    """Long format: layer, stage, dim, mean, var, absmax, weight, bias."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("layer", "stage", "dim", "mean", "var", "absmax", "weight", "bias"))
    for r in o.layers:
        for stage, s in (("pre", r.pre), ("post", r.post)):
            if s is None:  # the output was not measured: no rows, never the input's
                continue
            d = s.per_dim
            n = d.mean.size
            wv = r.weight.values if r.weight is not None and r.weight.values.size == n else None
            bv = r.bias.values if r.bias is not None and r.bias.values.size == n else None
            for i in range(n):
                w.writerow((r.name, stage, i, _cell(float(d.mean[i])), _cell(float(d.var[i])),
                            _cell(float(d.absmax[i])),
                            _cell(float(wv[i])) if wv is not None else "",
                            _cell(float(bv[i])) if bv is not None else ""))
    return buf.getvalue()


_NUM = r"(?:-?[0-9][0-9.eE+-]*|null)"
_NUMBERS = re.compile(rf"\[\s*\n\s*({_NUM}(?:,\s*\n\s*{_NUM})*)\s*\n\s*\]")


def dumps(doc: dict[str, Any]) -> str:
    """Indented JSON with each list of numbers on one line (per-dim lists would otherwise
    take one line per number)."""
    text = json.dumps(doc, indent=2, allow_nan=False)
    return _NUMBERS.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(","))
                        + "]", text) + "\n"


def write_folder(o: InspectOutcome, run_dir: Path, figures: bool = True,
                 dpi: int = 100) -> dict[str, Any]:
    """Write everything into `run_dir` (which exists); inspect.json last, so a folder never
    holds a partial one. Returns the document."""
    if figures:
        from lnexp.inspect.depth import SINGLE
        from lnexp.inspect.figures import FIGURES

        (run_dir / "figures").mkdir(exist_ok=True)
        for name, make in {**FIGURES, **SINGLE}.items():
            if (fig := make(o)) is not None:  # None: not measured (no blocks, no --ablate)
                save_figure(fig, run_dir / "figures" / f"{name}.png", dpi)
    write_atomic(run_dir / "layers.csv", layers_csv(o))
    write_atomic(run_dir / "dims.csv", dims_csv(o))
    doc = document(o)
    write_atomic(run_dir / "inspect.json", dumps(doc))
    return doc




def folder_name(model_name: str) -> str:
    """`inspect-<model>` as a plain folder name (letters, digits, . _ -)."""
    return "inspect-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("._") or "model")


def inspect_into_folder(model_spec: str, input_spec: Any, options: Any, root: Path,
                        argv: list[str], progress: Any = None, figures: bool = True,
                        ) -> tuple[InspectOutcome, Path, dict[str, Any]]:
    """Measure, then write a new folder ROOT/inspect-<model>/<timestamp>-<id>/ with its status
    in run.json (kind "inspect"). The folder is made only once the measurement succeeded, so a
    bad model or input leaves nothing behind."""
    from lnexp.inspect import run_inspect

    outcome = run_inspect(model_spec, input_spec, options, progress)
    run_dir = create_run_dir(root, folder_name(outcome.model["name"]))
    folder = RunFolder(run_dir, "inspect", argv, name=outcome.model["name"])
    with folder.tracking():
        doc = write_folder(outcome, run_dir, figures=figures)
    return outcome, run_dir, doc
