"""An inspect folder (`lnexp inspect MODEL`) as a Document: the model and its inputs, what each
norm layer does to its input (per-token variance before and after, the largest outlier dim,
int8 error), the notes, the figures and the environment.

Read from inspect.json only (layers.csv and dims.csv hold the same numbers flat); every field
is optional, so a folder of an older or newer lnexp still gets a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lnexp.report.document import Bullets, Document, Figure, Section, Table, Text
from lnexp.report.parts import (
    MAX_ROWS,
    env_section,
    figures_section,
    fmt,
    read_json,
    status_line,
    status_word,
    when_fields,
)

FIGURE_CAPTIONS = {
    "token_variance": "Per-token variance before and after each norm layer, by layer.",
    "absmax": "The largest |value| per hidden dim, before and after each norm layer: outlier "
              "dims are bright columns.",
    "weights": "The learned scale (γ) and shift (β) of each norm layer.",
}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _layer_row(layer: dict[str, Any]) -> list[str]:
    top = (_get(layer, "pre", "outliers") or [{}])[0] or {}
    post = layer.get("post")
    return [str(layer.get("name", "?")), str(layer.get("type", "?")),
            fmt(_get(layer, "pre", "per_token", "count")),
            fmt(_get(layer, "pre", "per_token", "var", "p50")),
            fmt(_get(post, "per_token", "var", "p50")) if post else "not measured",
            fmt(_get(post, "per_token", "var", "max")) if post else "not measured",
            f"{top.get('dim', 'n/a')} ({fmt(top.get('ratio'))}×)" if top else "n/a",
            fmt(_get(layer, "quant", "per_token_sqnr_db"))]


def _found(layers: list[dict[str, Any]]) -> Text | None:
    """What the measurement found: how far the layers pin per-token variance, and the
    strongest outlier dim."""
    post = [v for v in (_get(x, "post", "per_token", "var", "p50") for x in layers)
            if isinstance(v, int | float)]
    tops = [(o.get("ratio"), x.get("name"), o.get("dim")) for x in layers
            for o in (_get(x, "pre", "outliers") or [])[:1]
            if isinstance(o, dict) and isinstance(o.get("ratio"), int | float)]
    if not post:
        return None
    line = (f"After the norm, the median per-token variance is {fmt(min(post))} … "
            f"{fmt(max(post))} over the {len(post)} measured layer(s)")
    if tops:
        ratio, name, dim = max(tops, key=lambda t: t[0])
        line += (f"; the strongest outlier dim going in is dim {dim} of layer {name}, "
                 f"{fmt(ratio)}× the median dim's |max|")
    return Text(line + ".")


def inspect_document(path: Path) -> Document:
    """An inspect folder: one row per norm layer, the notes, the figures."""
    info = read_json(path / "run.json")
    doc_json = read_json(path / "inspect.json") or {}
    model = doc_json.get("model") or {}
    inputs = doc_json.get("inputs") or {}
    layers = [x for x in doc_json.get("layers") or [] if isinstance(x, dict)]
    status = status_word(info, "completed" if doc_json else "unknown")
    name = model.get("name") or (info or {}).get("name") or path.name
    doc = Document(title=f"lnexp inspect · {name}", kind="inspect", path=path, status=status)
    doc.lead = [f"The norm layers of {model.get('class', 'a model')} ({model.get('spec', name)}, "
                f"{fmt(model.get('parameters'))} parameters) measured on "
                f"{inputs.get('description', 'its inputs')}."]
    doc.headline.append(Text(f"{len(layers)} norm layer(s) hooked and measured."
                             if layers else "No norm layer was found in this model.",
                             "" if layers else "warn"))
    found = _found(layers)
    if found:
        doc.headline.append(found)
    line = status_line("inspect", info)
    if line:
        doc.headline.append(line)
    doc.facts = [("model", str(model.get("spec", name))),
                 ("inputs", f"{inputs.get('description', 'n/a')}, batch "
                            f"{fmt(inputs.get('batch_size'))}"),
                 *when_fields(info), ("folder", str(path))]
    if layers:
        rows = [_layer_row(x) for x in layers[:MAX_ROWS]]
        table = Table(["layer", "type", "tokens", "token var before (median)",
                       "token var after (median)", "token var after (max)",
                       "top dim in (× median)", "int8 SQNR per token (dB)"], rows,
                      caption="Per norm layer (inspect.json has the full detail, layers.csv "
                              "one row per layer)",
                      note=f"first {MAX_ROWS} of {len(layers)} layers" if len(layers) > MAX_ROWS
                      else "")
        blocks: list[Any] = [table]
        labels = doc_json.get("labels") or {}
        if labels:
            blocks.append(Bullets([f"{k}: {v}" for k, v in labels.items()]))
        doc.sections.append(Section("Norm layers", blocks))
    notes = [str(n) for n in doc_json.get("notes") or []]
    if notes:
        doc.sections.append(Section("Notes", [Bullets(notes)]))
    figures = sorted((path / "figures").glob("*.png"))
    fig = figures_section(figures)
    if fig:
        for b in fig.blocks:
            if isinstance(b, Figure) and not b.caption:
                b.caption = FIGURE_CAPTIONS.get(b.path.stem, "")
        doc.sections.append(fig)
    env = env_section(read_json(path / "env.json"))
    if env:
        doc.sections.append(env)
    return doc
