"""`lnexp inspect A B ...`: several models on the same inputs, side by side.

Folder: OUTPUT_DIR/inspect-<A>+<B>.../<timestamp>-<id>/ holds one child folder per model
(`<name>/`: what `lnexp inspect <name>` writes, inspect.json, CSVs, figures, without its own
run.json), and
across them side_by_side.json (one row per model and measurement), side_by_side.csv and
figures/{massive,kurtosis,alpha,int8,layer_skip}.png with depth normalised to 0–1. run.json
says kind "inspect" (with `models`). Models are loaded one after the other, each released
before the next loads; a model that fails stops the whole command (exit 2) and removes
nothing already written.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from lnexp.inspect.outcome import SCHEMA_VERSION, InspectOutcome, _num


def _jsonable(v: Any) -> Any:
    return _num(v) if isinstance(v, float) else v


def document(outcomes: list[InspectOutcome], children: list[str]) -> dict[str, Any]:
    """side_by_side.json."""
    from lnexp import __version__
    from lnexp.inspect.depth_table import summary_rows

    models = []
    for o, child in zip(outcomes, children, strict=True):
        rows = summary_rows(o)
        models.append({"name": o.model["name"], "spec": o.model["spec"],
                       "class": o.model["class"], "parameters": o.model["parameters"],
                       "folder": child, "norm_layers": len(o.layers), "blocks": len(o.massive),
                       "inputs": o.inputs,
                       "measurements": {k: {f: _jsonable(v) for f, v in r.items()}
                                        for k, r in rows.items()}})
    return {"schema_version": SCHEMA_VERSION, "kind": "inspect_side_by_side",
            "lnexp_version": __version__,
            "depth": "block index / (blocks − 1), or norm layer index / (layers − 1): 0…1",
            "models": models}


def rows_csv(doc: dict[str, Any]) -> str:
    """Long format: model (its folder name, unique when a model is given twice), measurement,
    field, value."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("model", "measurement", "field", "value"))
    for m in doc["models"]:
        for key, row in m["measurements"].items():
            for f, v in row.items():
                w.writerow((m["folder"], key, f, "" if v is None else v))
    return buf.getvalue()


def child_names(outcomes: list[InspectOutcome]) -> list[str]:
    """A folder name per model, unique (`minilm`, `minilm-2` when given twice)."""
    seen: dict[str, int] = {}
    out = []
    for o in outcomes:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(o.model["name"])).strip("._") or "model"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def inspect_many(specs: list[str], input_spec: Any, options: Any, root: Path, argv: list[str],
                 progress: Any = None, figures: bool = True,
                 ) -> tuple[list[InspectOutcome], Path, dict[str, Any]]:
    """Measure each model in turn, then write the parent folder with one child per model."""
    from lnexp.inspect import run_inspect
    from lnexp.inspect.files import write_folder
    from lnexp.store.files import RunFolder, create_run_dir, write_atomic

    outcomes = []
    for spec in specs:  # each model is released (only its outcome kept) before the next loads
        outcomes.append(run_inspect(spec, input_spec, options, progress))
    names = child_names(outcomes)
    run_dir = create_run_dir(root, "inspect-" + "+".join(names)[:200])
    folder = RunFolder(run_dir, "inspect", argv, name="+".join(names), models=names)
    with folder.tracking():
        for o, name in zip(outcomes, names, strict=True):
            (run_dir / name).mkdir()
            write_folder(o, run_dir / name, figures=figures)
        doc = document(outcomes, names)
        if figures:
            _figures(outcomes, run_dir)
        write_atomic(run_dir / "side_by_side.csv", rows_csv(doc))
        from lnexp.inspect.files import dumps

        write_atomic(run_dir / "side_by_side.json", dumps(doc))
    return outcomes, run_dir, doc


def _figures(outcomes: list[InspectOutcome], run_dir: Path) -> None:
    import dataclasses

    from lnexp.inspect.depth import MULTI
    from lnexp.store.figures import save_figure

    (run_dir / "figures").mkdir(exist_ok=True)
    named = [dataclasses.replace(o, model={**o.model, "name": n})  # unique legend labels
             for o, n in zip(outcomes, child_names(outcomes), strict=True)]
    for name, make in MULTI.items():
        if (fig := make(named)) is not None:
            save_figure(fig, run_dir / "figures" / f"{name}.png", 100)


def render(console: Any, outcomes: list[InspectOutcome], run_dir: str | None = None) -> None:
    """One table per measurement, one row per model; then the folder."""
    from lnexp.inspect.depth_table import summary_rows, summary_tables

    names = child_names(outcomes)  # unique, as the child folders
    for t in summary_tables(names, [summary_rows(o) for o in outcomes]):
        console.print(t)
    for o, name in zip(outcomes, names, strict=True):
        for line in o.notes:
            console.print(f"• {name}: {line}", soft_wrap=False)
    if run_dir:
        console.print(f"\ninspect folder: {run_dir}")
