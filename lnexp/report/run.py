"""A run folder as a Document: verdict, per-axis statistics, the chosen sample, expectations,
per-layer profile, training, figures, config and environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lnexp.report.document import Bullets, Document, Fields, Section, Table, Text, Tone
from lnexp.report.parts import (
    MAX_ROWS,
    config_section,
    env_section,
    expected_figures,
    figures_section,
    fmt,
    header_comment,
    plain,
    plural,
    precise,
    read_json,
    read_text,
    run_figures,
    safe_yaml,
    span,
    status_line,
    status_word,
    when_fields,
)


def _stage_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The terminal's statistics table: min … max over each axis, before and after."""
    stages = metrics.get("stages") or {}
    pre, post = stages.get("pre_norm") or {}, stages.get("post_norm") or {}
    shape = metrics.get("shape") or {}
    n, c = shape.get("n_samples", "?"), shape.get("features", "?")
    rows: list[list[str]] = []
    stat_names = (("mean", "mean"), ("var", "var (biased, ÷n)"),
                  ("var_unbiased", "var (unbiased, ÷(n−1))"))
    for axis, label in (("per_feature", f"per-feature (over {plural(n, 'sample')}, dim 0)"),
                        ("per_sample", f"per-sample (over {plural(c, 'feature')}, dim 1)")):
        rows.append([label])
        for key, name in stat_names:
            cells = []
            for stage in (pre, post):
                s = ((stage.get(axis) or {}).get("summary") or {}).get(key) or {}
                cells.append(span(s.get("min"), s.get("max")) if s else "n/a")
            rows.append([name, *cells])
    rows.append(["global (every value)"])
    for key, name in (("mean", "mean"), ("var", "var (biased)"), ("rms", "RMS")):
        rows.append([name, *(fmt((st.get("global") or {}).get(key)) for st in (pre, post))])
    rows.append(["min / max",
                 *(f"{fmt((st.get('global') or {}).get('min'))} / "
                   f"{fmt((st.get('global') or {}).get('max'))}" for st in (pre, post))])
    return rows


def _verdict_lines(metrics: dict[str, Any]) -> list[Text]:
    out = []
    verdict = metrics.get("verdict") or {}
    axes = sorted((("per_sample", "sample"), ("per_feature", "feature")),
                  key=lambda a: not (verdict.get(a[0]) or {}).get("standardized"))
    for axis, what in axes:
        v = verdict.get(axis)
        if not v:
            continue
        detail = (f"max |mean| {fmt(v.get('mean_abs_max'))}, variance "
                  f"{span(v.get('var_min'), v.get('var_max'))}, "
                  f"tolerance {plain(v.get('tolerance'))}")
        if v.get("standardized"):
            out.append(Text(f"Every {what} is standardized after the norm ({detail})."))
        else:
            out.append(Text(f"{what.capitalize()}s are not standardized after the norm "
                            f"({detail})."))
    return out


def _expectation_parts(results: list[dict[str, Any]]) -> tuple[Text | None, Table | None]:
    if not results:
        return None, None
    failed = [r for r in results if not r.get("passed")]
    line = (Text(f"Expectations: {len(failed)} of {len(results)} failed.", "fail") if failed
            else Text(f"Expectations: all {len(results)} passed.", "pass"))
    rows = [[str(r.get("expectation", "")), precise(r.get("value")),
             "pass" if r.get("passed") else "FAIL", str(r.get("note") or "")] for r in results]
    tones: list[Tone] = ["pass" if r.get("passed") else "fail" for r in results]
    return line, Table(["expectation", "value", "result", "note"], rows, tones=tones)


def _numeric_trouble(metrics: dict[str, Any]) -> Text | None:
    nt = metrics.get("numeric_trouble") or {}
    if not nt.get("detected"):
        return None
    counts = ", ".join(f"{stage}: {fmt((nt.get(stage) or {}).get('nonfinite'))}"
                       for stage in ("input", "pre_norm", "post_norm"))
    return Text(f"Numeric trouble: NaN/Inf first appears in {nt.get('first_stage')} "
                f"(non-finite values {counts}).", "warn")


def _sample_table(metrics: dict[str, Any], norm: str) -> Table | None:
    sample = metrics.get("sample")
    if not sample:
        return None
    pre, post = sample.get("pre_norm") or {}, sample.get("post_norm") or {}
    n = len(post.get("values") or []) or (metrics.get("shape") or {}).get("features", "n")
    rows = [[label, fmt(pre.get(key)), fmt(post.get(key))] for key, label in (
        ("mean", "mean"), ("var", "var (biased, ÷n)"),
        ("var_unbiased", f"var (unbiased, ÷(n−1), n={n})"), ("std", "std (biased)"))]
    return Table(["statistic", f"before {norm}", f"after {norm}"], rows,
                 caption=f"Sample {sample.get('index', 0)} (over its {n} features)")


def _layers_section(layers: dict[str, Any] | None) -> Section | None:
    if not layers:
        return None
    names = layers.get("names") or []
    cols = ("activation_mean", "activation_std", "hidden_rms", "grad_norm", "weight_norm")
    rows = [[name, *(fmt((layers.get(c) or [None] * len(names))[i]) for c in cols)]
            for i, name in enumerate(names)]
    note = f"first {MAX_ROWS} of {len(rows)} blocks" if len(rows) > MAX_ROWS else ""
    blocks: list[Any] = [
        Text(f"Gradient norm of the first block over the last: "
             f"{fmt(layers.get('grad_norm_first_over_last'))}."),
        Table(["block", "activation mean", "activation std", "hidden RMS", "grad norm",
               "weight norm"],
              rows[:MAX_ROWS], note=note),
    ]
    if layers.get("loss"):
        blocks.append(Text(f"Loss differentiated: {layers['loss']} "
                           f"(value {fmt(layers.get('loss_value'))})."))
    return Section("Layers", blocks)


def _training_section(tr: dict[str, Any] | None) -> Section | None:
    if not tr:
        return None
    final = tr.get("final") or {}
    held = final.get("heldout") or {}
    ev, trm = held.get("eval_mode") or {}, held.get("train_mode") or {}
    facts = [("loss", str(tr.get("loss"))), ("steps done", fmt(tr.get("steps_done"))),
             ("diverged", fmt(bool(tr.get("diverged")))),
             ("interrupted", fmt(bool(tr.get("interrupted")))),
             ("train loss (last 10% of steps)", fmt(final.get("train_loss_last_10pct")))]
    rows = [["eval mode", fmt(ev.get("loss")), fmt(ev.get("accuracy"))],
            ["train mode", fmt(trm.get("loss")), fmt(trm.get("accuracy"))]]
    blocks: list[Any] = [
        Fields(facts),
        Table(["held-out, final", "loss", "accuracy"], rows,
              caption=f"Held-out set at step {held.get('step', '?')}"),
    ]
    evals = tr.get("evals") or []
    if evals:
        erows = [[str(e.get("step")), fmt((e.get("eval_mode") or {}).get("loss")),
                  fmt((e.get("eval_mode") or {}).get("accuracy")),
                  fmt((e.get("train_mode") or {}).get("loss")),
                  fmt((e.get("train_mode") or {}).get("accuracy"))] for e in evals]
        blocks.append(Table(["step", "eval-mode loss", "eval-mode accuracy", "train-mode loss",
                             "train-mode accuracy"], erows[:MAX_ROWS],
                            caption="Held-out evaluations (history.csv has every step)"))
    layers = tr.get("layers") or []
    if layers:
        g, u = tr.get("grad_norm_mean") or [], tr.get("update_ratio_mean") or []
        lrows = [[name, fmt(g[i] if i < len(g) else None), fmt(u[i] if i < len(u) else None)]
                 for i, name in enumerate(layers)]
        blocks.append(Table(["layer", "mean grad norm", "mean update/weight ratio"], lrows,
                            caption="Per layer, averaged over the steps"))
    return Section("Training", blocks)


def run_document(path: Path) -> Document:
    """A run folder (lnexp run, a sweep trial, or one norm of a compare)."""
    info = read_json(path / "run.json")
    metrics = read_json(path / "metrics.json") or {}
    cfg = metrics.get("config") or safe_yaml(read_text(path / "config.yaml")) or {}
    norm = metrics.get("norm") or {}
    name = norm.get("name") or (cfg.get("model") or {}).get("norm") or "?"
    status = status_word(info, "completed" if metrics else "unknown")
    doc = Document(title=f"lnexp run · {cfg.get('name', path.name)}", kind="run", path=path,
                   status=status, lead=header_comment(info, cfg.get("name")))
    if norm:
        doc.headline.append(Text(f"{norm.get('title', name)} ({name}): {norm.get('summary', '')}"))
    for line in (status_line("run", info), _numeric_trouble(metrics)):
        if line:
            doc.headline.append(line)
    exp_line, exp_table = _expectation_parts(metrics.get("expectations") or [])
    if exp_line:
        doc.headline.append(exp_line)
    doc.headline.extend(_verdict_lines(metrics))

    shape = metrics.get("shape") or {}
    model = cfg.get("model") or {}
    doc.facts = [("norm", f"{norm.get('title', name)} ({name})")]
    if shape:
        doc.facts.append(("batch", f"{plural(shape.get('n_samples'), 'sample')} × "
                                   f"{plural(shape.get('features'), 'feature')}"))
    if model:
        doc.facts.append(("model", f"depth {model.get('depth', 1)}, "
                                   f"{model.get('placement', 'post')}, "
                                   f"{model.get('mode', 'train')} mode, "
                                   f"eps {plain(model.get('eps'))}"))
    doc.facts += [("seed", str(cfg.get("seed", "?"))), *when_fields(info),
                  ("folder", str(path))]

    if metrics.get("stages"):
        summary_blocks: list[Any] = [
            Table(["statistic (min … max over the axis)", f"before {name}", f"after {name}"],
                  _stage_rows(metrics), caption=f"{norm.get('title', name)} ({name})")]
        if metrics.get("explanation"):
            summary_blocks.append(Bullets([str(x) for x in metrics["explanation"]]))
        doc.sections.append(Section("Statistics", summary_blocks))
    elif status == "completed":
        doc.headline.append(Text("metrics.json is missing from this folder.", "fail"))
    if exp_table:
        doc.sections.append(Section("Expectations", [exp_table]))
    sample = _sample_table(metrics, name)
    if sample:
        doc.sections.append(Section("Sample", [sample], summary=False))
    for section in (_layers_section(metrics.get("layers")),
                    _training_section(metrics.get("training")),
                    figures_section(run_figures(path), expected_figures(path, cfg)),
                    config_section(read_text(path / "config.yaml")),
                    env_section(read_json(path / "env.json"))):
        if section:
            doc.sections.append(section)
    return doc
