"""Read a run, compare or sweep folder from its files on disk into a `Document`.

Only the files are read (run.json, metrics.json, comparison.json, sweep.json, summary.csv,
config.yaml, env.json, the PNGs), never the code that wrote them, so a report can be made of
any folder, including one from an older lnexp or one copied off a CI machine. Each kind of
folder has one builder in `BUILDERS`; a new kind (e.g. inspect) adds one function there.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lnexp.errors import RunFolderError
from lnexp.numbers import SWEEP_CELLS, median_range
from lnexp.report.document import (
    Bullets,
    Code,
    Document,
    Fields,
    Figure,
    Section,
    Table,
    Text,
    Tone,
)
from lnexp.store import reading

# The files that say what a folder is, for folders whose run.json is missing.
MARKERS = {"sweep.json": "sweep", "comparison.json": "compare", "metrics.json": "run"}
# Long tables are cut here on the page (the CSV/JSON files in the folder have every row).
MAX_ROWS = 1000

FIGURE_CAPTIONS = {
    "overview": "The distribution of all values and of the chosen sample · per-feature "
                "statistics (over the samples, dim 0) · per-sample statistics (over the "
                "features, dim 1); blue before the norm, green after.",
    "heatmap": "The activation matrix before and after the norm, with per-feature and "
               "per-sample std margins.",
    "layers": "Activation std and weight-gradient norm (log) by block, at initialization.",
    "training": "Loss, held-out accuracy in eval vs train mode, gradient norm and "
                "update/weight ratio by layer over the steps.",
    "comparison": "One column per norm: per-feature variance, per-sample variance and the "
                  "activation heatmap on one colour scale.",
    "summary": "Each metric against a swept key, one line per norm: the median over the "
               "seeds, with a min–max band.",
}
FIGURE_ORDER = ("overview", "heatmap", "layers", "training")


# --------------------------------------------------------------------------- numbers

def fmt(x: Any) -> str:
    """A number as the terminal tables print it: 4 decimals, or 4 significant digits in
    scientific notation outside 1e-3..1e5; None as 'n/a'; ints and text as they are."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if not isinstance(x, float):
        return str(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"


def precise(x: Any) -> str:
    """A number with 6 significant digits, for values checked against a bound (0.99998, not
    1.0000 next to `<= 1`)."""
    return f"{x:.6g}" if isinstance(x, float) and not isinstance(x, bool) else fmt(x)


def span(lo: Any, hi: Any) -> str:
    """`min … max`, or one number when both print the same."""
    a, b = fmt(lo), fmt(hi)
    return a if a == b else f"{a} … {b}"


def plural(k: Any, word: str) -> str:
    """`1 sample`, `100 samples`."""
    return f"{fmt(k)} {word}" + ("" if k == 1 else "s")


def _plain(v: Any) -> str:
    """A config value as YAML would write it inline: true, null, bn, [1, 2]."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str | int | bool) or v is None:
        return json.dumps(v) if not isinstance(v, str) else v
    return json.dumps(v, separators=(", ", ": "))


# --------------------------------------------------------------------------- files

def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON document of the folder, None when the file is absent; "cannot read FILE: why"
    (exit 2) when it is unreadable or not of the shape lnexp writes (lnexp.store.reading)."""
    return reading.read_json_or_none(path)


def _read_text(path: Path) -> str | None:
    """config.yaml as text (bounded, regular files only), None when absent or unreadable: the
    config is shown, never trusted."""
    try:
        return reading.read_text(path)
    except reading.UnreadableFile:
        return None


def folder_kind(path: Path) -> str:
    """run, compare or sweep (run.json's `kind`, else the folder's marker file);
    RunFolderError for anything else, saying what was found."""
    if not path.exists():
        raise RunFolderError(f"{path}: no such folder")
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a folder; expected a run, compare or sweep folder "
                             f"(e.g. outputs/default/<timestamp>-<id>)")
    info = _read_json(path / "run.json")
    kind = info.get("kind") if info else None
    if kind is None:
        kind = next((k for f, k in MARKERS.items() if (path / f).is_file()), None)
    if kind is None:
        inner = sorted(p.parent for p in path.glob("*/run.json"))
        hint = (f"; it holds {len(inner)} lnexp folder(s), e.g. {inner[-1]} "
                f"(`lnexp runs` lists them)" if inner else "")
        raise RunFolderError(f"{path}: not an lnexp folder (no run.json, metrics.json, "
                             f"comparison.json or sweep.json){hint}")
    if kind not in BUILDERS:
        raise RunFolderError(f"{path}: a {kind!r} folder; lnexp report knows "
                             f"{', '.join(BUILDERS)} folders")
    return str(kind)


def read_folder(path: str | Path) -> Document:
    """The report of a run, compare or sweep folder (a file inside one stands for its folder)."""
    path = Path(path)
    if path.is_file() and path.name in {"run.json", *MARKERS}:
        path = path.parent
    return BUILDERS[folder_kind(path)](path)


def _status(info: dict[str, Any] | None, fallback: str) -> str:
    return str(info.get("status") or fallback) if info else fallback


def _status_line(kind: str, info: dict[str, Any] | None) -> Text | None:
    """A headline for anything but `completed`."""
    status = _status(info, "unknown")
    if status == "completed":
        return None
    error = (info or {}).get("error")
    what = {"partial": "partly done", "failed": "failed", "interrupted": "interrupted",
            "running": "still running (or killed without a chance to say so)",
            "unknown": "no run.json, status unknown"}.get(status, status)
    tone: Tone = "warn" if status in ("partial", "running", "unknown") else "fail"
    return Text(f"This {kind} is {what}" + (f": {error}" if error else "."), tone)


def _when(info: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not info:
        return []
    out = [("started", str(info["started"]))] if info.get("started") else []
    if info.get("finished"):
        out.append(("finished", str(info["finished"])))
    argv = info.get("argv")
    if isinstance(argv, list) and argv:
        # shell-quoted: pasted into a shell it runs the same command
        out.append(("command", shlex.join(["lnexp", *map(str, argv[1:])])))
    return out


def _env_section(env: dict[str, Any] | None, note: str = "") -> Section | None:
    if not env:
        return None
    items = [(k, " ".join(map(str, v)) if isinstance(v, list) else fmt(v) if v is not None
              else "n/a") for k, v in env.items()]
    blocks: list[Any] = [Fields(items)]
    if note:
        blocks.insert(0, Text(note))
    return Section("Environment", blocks, summary=False)


def _config_section(text: str | None, title: str = "config.yaml",
                    note: str = "") -> Section | None:
    if text is None:
        return None
    blocks: list[Any] = [Code(title, text.rstrip("\n"))]
    if note:
        blocks.insert(0, Text(note))
    return Section("Resolved config", blocks, summary=False)


def _figures(paths: list[Path]) -> Section | None:
    figs = [Figure(p.stem, p, FIGURE_CAPTIONS.get(p.stem, "")) for p in paths if p.is_file()]
    return Section("Figures", list(figs), summary=False) if figs else None


def _run_figures(path: Path) -> list[Path]:
    found = sorted((path / "figures").glob("*.png"))
    rank = {name: i for i, name in enumerate(FIGURE_ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


# --------------------------------------------------------------------------- run

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
                  f"tolerance {_plain(v.get('tolerance'))}")
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
    cols = ("activation_mean", "activation_std", "grad_norm", "weight_norm")
    rows = [[name, *(fmt((layers.get(c) or [None] * len(names))[i]) for c in cols)]
            for i, name in enumerate(names)]
    note = f"first {MAX_ROWS} of {len(rows)} blocks" if len(rows) > MAX_ROWS else ""
    blocks: list[Any] = [
        Text(f"Gradient norm of the first block over the last: "
             f"{fmt(layers.get('grad_norm_first_over_last'))}."),
        Table(["block", "activation mean", "activation std", "grad norm", "weight norm"],
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
    info = _read_json(path / "run.json")
    metrics = _read_json(path / "metrics.json") or {}
    cfg = metrics.get("config") or _safe_yaml(_read_text(path / "config.yaml")) or {}
    norm = metrics.get("norm") or {}
    name = norm.get("name") or (cfg.get("model") or {}).get("norm") or "?"
    status = _status(info, "completed" if metrics else "unknown")
    doc = Document(title=f"lnexp run · {cfg.get('name', path.name)}", kind="run", path=path,
                   status=status)
    if norm:
        doc.headline.append(Text(f"{norm.get('title', name)} ({name}): {norm.get('summary', '')}"))
    for line in (_status_line("run", info), _numeric_trouble(metrics)):
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
                                   f"eps {_plain(model.get('eps'))}"))
    doc.facts += [("seed", str(cfg.get("seed", "?"))), *_when(info),
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
                    _figures(_run_figures(path)),
                    _config_section(_read_text(path / "config.yaml")),
                    _env_section(_read_json(path / "env.json"))):
        if section:
            doc.sections.append(section)
    return doc


def _safe_yaml(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    from lnexp.config.loading import load_yaml  # the config loader's depth and alias bounds
    from lnexp.errors import ConfigError

    try:
        data, _ = load_yaml(text, "config.yaml")
    except ConfigError:
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- compare

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
        f"verdict (tolerance {_plain(_tolerance(norms))})",
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
            m = _read_json(child / "metrics.json") or {}
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


def compare_document(path: Path) -> Document:
    """A compare folder: one column per norm, the comparison figures, each norm's lines."""
    info = _read_json(path / "run.json")
    doc_json = _read_json(path / "comparison.json") or {}
    cfg = doc_json.get("config") or _safe_yaml(_read_text(path / "config.yaml")) or {}
    norms = [n for n in doc_json.get("norms") or [] if isinstance(n, dict)]
    status = _status(info, str(doc_json.get("status") or "unknown"))
    doc = Document(title=f"lnexp compare · {cfg.get('name', path.name)}", kind="compare",
                   path=path, status=status)
    shape = doc_json.get("shape") or {}
    done = [n for n in norms if n.get("status") == "completed"]
    if norms:
        doc.headline.append(Text(
            f"{len(done)} of {len(norms)} norms computed on the same "
            f"{fmt(shape.get('n_samples'))} × {fmt(shape.get('features'))} activations"
            + (": " if done else ".")
                + "; ".join(f"{n['name']} standardizes {n.get('standardizes') or 'neither'}"
                        for n in done) + ("." if done else "")))
    for n in norms:
        if n.get("status") != "completed":
            reason = str(n.get("reason") or "")
            reason = reason.removeprefix(f"{n.get('name')}: ")
            doc.headline.append(Text(f"{n.get('name')}: not computed - {reason}", "warn"))
    line = _status_line("compare", info)
    if line and status != "partial":
        doc.headline.append(line)
    if not doc_json and status == "completed":
        doc.headline.append(Text("comparison.json is missing from this folder.", "fail"))
    doc.facts = [("norms", ", ".join(str(n.get("name")) for n in norms) or "n/a"),
                 ("batch", f"{plural(shape.get('n_samples'), 'sample')} × "
                           f"{plural(shape.get('features'), 'feature')}"),
                 ("seed", str(cfg.get("seed", "?"))), *_when(info), ("folder", str(path))]
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
    fig = _figures([path / "comparison.png", path / "layers.png"])
    if fig:
        if done:
            fig.blocks.append(Text("Each norm's own figures are in its folder (" +
                                   ", ".join(f"{n['run_dir']}/figures" for n in done) +
                                   "); `lnexp report` on that folder shows them."))
        doc.sections.append(fig)
    for section in (_config_section(_read_text(path / "config.yaml"),
                                    note="The base config; each norm's run uses it with "
                                         "model.norm set to that norm."),
                    _env_section(_read_json(path / "env.json"))):
        if section:
            doc.sections.append(section)
    return doc


# --------------------------------------------------------------------------- sweep

def _short_metric(metric: str) -> str:
    """`post_norm.per_sample.var.spread` -> `per_sample var.spread` (the terminal's header)."""
    parts = metric.split(".")
    if len(parts) >= 4 and parts[0] in ("post_norm", "pre_norm"):
        head = " ".join(parts[1:-2]) if parts[0] == "post_norm" else " ".join(parts[:-2])
        return f"{head} {'.'.join(parts[-2:])}"
    return metric


def sweep_document(path: Path) -> Document:
    """A sweep folder: the summary over seeds, failed trials, summary.png, every trial."""
    info = _read_json(path / "run.json")
    sw = _read_json(path / "sweep.json") or {}
    status = _status(info, str(sw.get("status") or "unknown"))
    base = (sw.get("definition") or {}).get("base") or {}
    doc = Document(title=f"lnexp sweep · {base.get('name', path.name)}", kind="sweep",
                   path=path, status=status)
    counts = sw.get("counts") or {}
    trials = [t for t in sw.get("trials") or [] if isinstance(t, dict)]
    total = counts.get("total", len(trials))
    completed = counts.get("completed", sum(t.get("status") == "completed" for t in trials))
    failed = [t for t in trials if t.get("status") == "failed"]
    tone: Tone = "pass" if completed == total and total else "warn"
    doc.headline.append(Text(f"{completed} of {total} trials completed"
                             + (f", {len(failed)} failed" if failed else "") + ".",
                             "fail" if failed else tone))
    line = _status_line("sweep", info)
    if line:
        doc.headline.append(line)
    keys = [str(k) for k in sw.get("keys") or []]
    group_keys = [str(k) for k in sw.get("group_keys") or [k for k in keys if k != "seed"]]
    metrics = [str(m) for m in sw.get("metrics") or []]
    doc.facts = [("swept keys", ", ".join(keys) or "n/a"),
                 ("metrics", ", ".join(metrics) or "n/a"),
                 ("workers", str(sw.get("jobs", "?"))),
                 *_when(info or {"started": sw.get("started"), "finished": sw.get("finished"),
                                 "argv": sw.get("argv")}),
                 ("folder", str(path))]
    if sw.get("definition_hash"):
        doc.facts.insert(-1, ("definition hash", str(sw["definition_hash"])))

    summary = [r for r in sw.get("summary") or [] if isinstance(r, dict)]
    if summary:
        rows = [[*(_plain(r.get(k)) for k in group_keys), str(r.get("completed", "")),
                 *(median_range((r.get("metrics") or {}).get(m), fmt) for m in metrics)]
                for r in summary]
        doc.sections.append(Section("Summary", [Table(
            [*group_keys, "n", *(_short_metric(m) for m in metrics)], rows[:MAX_ROWS],
            caption=SWEEP_CELLS.format(over="seeds").capitalize(),
            note=f"first {MAX_ROWS} of {len(rows)} rows; summary.csv has all"
            if len(rows) > MAX_ROWS else "")]))
    elif trials:
        doc.headline.append(Text("No summary yet (the sweep did not finish); the trials "
                                 "are listed below.", "warn"))
    if failed:
        rows = [[str(t.get("index")), " ".join(f"{k}={_plain(v)}" for k, v in
                                               (t.get("params") or {}).items()),
                 str(t.get("error") or "")] for t in failed]
        doc.sections.append(Section("Failed trials", [Table(
            ["trial", "params", "error"], rows[:MAX_ROWS], tones=["fail"] * len(rows[:MAX_ROWS]))]))
    fig = _figures([path / "summary.png"])
    if fig:
        doc.sections.append(fig)
    if trials:
        rows, tones = [], []
        for t in trials[:MAX_ROWS]:
            params = t.get("params") or {}
            rows.append([str(t.get("index")), *(_plain(params.get(k)) for k in keys),
                         str(t.get("status")), fmt(t.get("seconds")), str(t.get("run_dir"))])
            tones.append("fail" if t.get("status") == "failed" else "")
        doc.sections.append(Section("Trials", [Table(
            ["trial", *keys, "status", "seconds", "folder"], rows, tones=tones,
            note=f"first {MAX_ROWS} of {len(trials)} trials; sweep.json has all"
            if len(trials) > MAX_ROWS else "")], summary=False))
    definition = sw.get("definition")
    if definition:
        doc.sections.append(Section("Definition", [
            Text("The base config (without output.dir and limits) and the grid, as stored in "
                 "sweep.json; `lnexp sweep --resume` compares against it."),
            Code("definition", yaml.safe_dump(definition, sort_keys=False,
                                              default_flow_style=None).rstrip("\n"))],
            summary=False))
    kids = (reading.child_folder(path, t.get("run_dir")) for t in trials)
    first = next((c for c in kids if c is not None and (c / "env.json").is_file()), None)
    if first is not None:
        env = _env_section(_read_json(first / "env.json"),
                           note=f"From the first trial's env.json ({first.name}).")
        if env:
            doc.sections.append(env)
    return doc


BUILDERS: dict[str, Callable[[Path], Document]] = {
    "run": run_document,
    "compare": compare_document,
    "sweep": sweep_document,
}
