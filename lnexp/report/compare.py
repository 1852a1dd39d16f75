"""A compare folder as a Document: one row per norm, the figures, config and environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lnexp.report.document import Bullets, Document, Section, Table, Text
from lnexp.report.parts import (
    config_section,
    env_section,
    expected_figures,
    figures_section,
    fmt,
    header_comment,
    plain,
    plural,
    read_json,
    read_text,
    safe_yaml,
    span,
    status_line,
    status_word,
    when_fields,
)
from lnexp.store import reading


def _compare_rows(norms: list[dict[str, Any]], path: Path, shape: dict[str, Any]
                  ) -> list[list[str]]:
    def col(entry: dict[str, Any], fn: Callable[[dict[str, Any]], str]) -> str:
        if entry.get("status") != "completed":
            return "not computed"
        try:
            return fn(entry)
        except (KeyError, TypeError):
            return "n/a"

    def rng(axis: str, stat: str) -> Callable[[dict[str, Any]], str]:
        return lambda e: span(e[axis][stat]["min"], e[axis][stat]["max"])

    specs: list[tuple[str, Callable[[dict[str, Any]], str]] | str] = [
        f"per-feature (over {plural(shape.get('n_samples'), 'sample')}, dim 0)",
        ("mean", rng("per_feature", "mean")),
        ("var (biased)", rng("per_feature", "var")),
        ("var (unbiased)", rng("per_feature", "var_unbiased")),
        f"per-sample (over {plural(shape.get('features'), 'feature')}, dim 1)",
        ("mean", rng("per_sample", "mean")),
        ("var (biased)", rng("per_sample", "var")),
        ("var (unbiased)", rng("per_sample", "var_unbiased")),
        "output (every value)",
        ("mean", lambda e: fmt(e["global"]["mean"])),
        ("RMS", lambda e: fmt(e["global"]["rms"])),
        ("min / max", lambda e: f"{fmt(e['global']['min'])} / {fmt(e['global']['max'])}"),
        f"verdict (tolerance {plain(_tolerance(norms))})",
        ("standardizes", lambda e: str(e.get("standardizes") or "neither")),
        ("expected", lambda e: str(e.get("expected_axis") or "n/a")),
    ]
    rows = [[spec] if isinstance(spec, str) else [spec[0], *(col(e, spec[1]) for e in norms)]
            for spec in specs]
    rows.insert(0, ["layer", *(str(e.get("title", "")) for e in norms)])
    # A deep model: the two rows the terminal adds, from each norm's own metrics.json.
    layers = {}
    for e in norms:
        child = reading.child_folder(path, e.get("run_dir"))
        if e.get("status") == "completed" and child is not None:
            m = read_json(child / "metrics.json") or {}
            if m.get("layers"):
                layers[e["name"]] = m["layers"]
    if layers:
        rows.append(["deep model (at initialization)"])
        rows.append(["grad norm first / last block",
                     *(fmt(layers[e["name"]].get("grad_norm_first_over_last"))
                       if e["name"] in layers else "n/a" for e in norms)])
        rows.append(["activation std, last block",
                     *(fmt((layers[e["name"]].get("activation_std") or [None])[-1])
                       if e["name"] in layers else "n/a" for e in norms)])
    return rows


def _tolerance(norms: list[dict[str, Any]]) -> Any:
    for e in norms:
        for v in (e.get("verdict") or {}).values():
            if isinstance(v, dict) and v.get("tolerance") is not None:
                return v["tolerance"]
    return None


def _found(n: dict[str, Any]) -> str:
    """`bn standardizes features`, saying so when that is not the axis the norm is for."""
    got, want = n.get("standardizes") or "neither", n.get("expected_axis")
    miss = f" (expected: {want})" if want and want not in (got, "neither") else ""
    return f"{n['name']} standardizes {got}{miss}"


def _pages_section(norms: list[dict[str, Any]], path: Path) -> Section | None:
    """One row per norm, linking to the report of its own folder (figures, sample, config)."""
    rows, links, tones = [], [], []
    for n in norms:
        child = reading.child_folder(path, n.get("run_dir"))
        done = n.get("status") == "completed"
        rows.append([str(n.get("name")), str(n.get("title") or ""),
                     str(n.get("standardizes") or "neither") if done else "not computed",
                     str(n.get("run_dir") or "")])
        links.append(child if child is not None and child.is_dir() else None)
        tones.append("" if done else "fail")
    if not any(links):
        return None
    return Section("Each norm's page", [
        Text("Each norm's own run: its figures, the chosen sample, its config; the name links "
             "to its page."),
        Table(["norm", "layer", "standardizes", "folder"], rows, links=links, tones=tones)],
        summary=False)


def compare_document(path: Path) -> Document:
    """A compare folder: one column per norm, the comparison figures, each norm's lines."""
    info = read_json(path / "run.json")
    doc_json = read_json(path / "comparison.json") or {}
    cfg = doc_json.get("config") or safe_yaml(read_text(path / "config.yaml")) or {}
    norms = [n for n in doc_json.get("norms") or [] if isinstance(n, dict)]
    status = status_word(info, str(doc_json.get("status") or "unknown"))
    doc = Document(title=f"lnexp compare · {cfg.get('name', path.name)}", kind="compare",
                   path=path, status=status, lead=header_comment(info, cfg.get("name")))
    shape = doc_json.get("shape") or {}
    done = [n for n in norms if n.get("status") == "completed"]
    if norms:
        doc.headline.append(Text(
            f"{len(done)} of {len(norms)} norms computed on the same "
            f"{fmt(shape.get('n_samples'))} × {fmt(shape.get('features'))} activations"
            + (": " if done else ".")
            + "; ".join(_found(n) for n in done) + ("." if done else "")))
    for n in norms:
        if n.get("status") != "completed":
            reason = str(n.get("reason") or "")
            reason = reason.removeprefix(f"{n.get('name')}: ")
            doc.headline.append(Text(f"{n.get('name')}: not computed - {reason}", "warn"))
    line = status_line("compare", info)
    if line and status != "partial":
        doc.headline.append(line)
    if not doc_json and status == "completed":
        doc.headline.append(Text("comparison.json is missing from this folder.", "fail"))
    doc.facts = [("norms", ", ".join(str(n.get("name")) for n in norms) or "n/a"),
                 ("batch", f"{plural(shape.get('n_samples'), 'sample')} × "
                           f"{plural(shape.get('features'), 'feature')}"),
                 ("seed", str(cfg.get("seed", "?"))), *when_fields(info), ("folder", str(path))]
    if norms:
        table = Table(["after the norm", *(str(n["name"]) for n in norms)],
                      _compare_rows(norms, path, shape), caption="Post-norm statistics, min … max "
                                                          "over the axis")
        blocks: list[Any] = [table]
        if doc_json.get("axes"):
            blocks.append(Text(str(doc_json["axes"])))
        lines = [str(x) for n in norms for x in (n.get("explanation") or [])]
        if lines:
            blocks.append(Bullets(lines))
        doc.sections.append(Section("Norms side by side", blocks))
    pages = _pages_section(norms, path)
    if pages:
        doc.sections.append(pages)
    fig = figures_section([path / "comparison.png", path / "norm_axes.png", path / "layers.png"],
                          expected_figures(path, cfg, "compare"))
    if fig:
        doc.sections.append(fig)
    for section in (config_section(read_text(path / "config.yaml"),
                                    note="The base config; each norm's run uses it with "
                                         "model.norm set to that norm."),
                    env_section(read_json(path / "env.json"))):
        if section:
            doc.sections.append(section)
    return doc
