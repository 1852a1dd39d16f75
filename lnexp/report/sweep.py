"""A sweep folder as a Document: the summary over seeds, failed trials, the figure, every trial,
the definition and the first trial's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lnexp.numbers import SWEEP_CELLS, median_range
from lnexp.report.document import Code, Details, Document, Section, Table, Text, Tone
from lnexp.report.parts import (
    MAX_ROWS,
    duration,
    env_section,
    figures_section,
    fmt,
    header_comment,
    plain,
    read_json,
    status_line,
    status_word,
    when_fields,
)
from lnexp.store import reading


def _short_metric(metric: str) -> str:
    """`post_norm.per_sample.var.spread` -> `per_sample var.spread` (the terminal's header)."""
    parts = metric.split(".")
    if len(parts) >= 4 and parts[0] in ("post_norm", "pre_norm"):
        head = " ".join(parts[1:-2]) if parts[0] == "post_norm" else " ".join(parts[:-2])
        return f"{head} {'.'.join(parts[-2:])}"
    return metric


def sweep_document(path: Path) -> Document:
    """A sweep folder: the summary over seeds, failed trials, summary.png, every trial."""
    info = read_json(path / "run.json")
    sw = read_json(path / "sweep.json") or {}
    status = status_word(info, str(sw.get("status") or "unknown"))
    base = (sw.get("definition") or {}).get("base") or {}
    doc = Document(title=f"lnexp sweep · {base.get('name', path.name)}", kind="sweep",
                   path=path, status=status, lead=header_comment(info, base.get("name")))
    counts = sw.get("counts") or {}
    trials = [t for t in sw.get("trials") or [] if isinstance(t, dict)]
    total = counts.get("total", len(trials))
    completed = counts.get("completed", sum(t.get("status") == "completed" for t in trials))
    failed = [t for t in trials if t.get("status") == "failed"]
    tone: Tone = "pass" if completed == total and total else "warn"
    doc.headline.append(Text(f"{completed} of {total} trials completed"
                             + (f", {len(failed)} failed" if failed else "") + ".",
                             "fail" if failed else tone))
    line = status_line("sweep", info)
    if line:
        doc.headline.append(line)
    keys = [str(k) for k in sw.get("keys") or []]
    group_keys = [str(k) for k in sw.get("group_keys") or [k for k in keys if k != "seed"]]
    metrics = [str(m) for m in sw.get("metrics") or []]
    doc.facts = [("swept keys", ", ".join(keys) or "n/a"),
                 ("metrics", ", ".join(metrics) or "n/a"),
                 ("workers", str(sw.get("jobs", "?"))),
                 *when_fields(info or {"started": sw.get("started"), "finished": sw.get("finished"),
                                 "argv": sw.get("argv")}),
                 ("folder", str(path))]
    if sw.get("definition_hash"):
        doc.facts.insert(-1, ("definition hash", str(sw["definition_hash"])))

    summary = [r for r in sw.get("summary") or [] if isinstance(r, dict)]
    found = _extremes(summary, group_keys, metrics[:1])
    if found:
        doc.headline.append(found)
    if summary:
        rows = [[*(plain(r.get(k)) for k in group_keys), str(r.get("completed", "")),
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
        doc.sections.append(_failed_section(failed, path))
    fig = figures_section([path / "summary.png"])
    if fig:
        doc.sections.append(fig)
    if trials:
        doc.sections.append(_trials_section(trials, keys, path))
    definition = sw.get("definition")
    if definition:
        doc.sections.append(_definition_section(definition))
    kids = (reading.child_folder(path, t.get("run_dir")) for t in trials)
    first = next((c for c in kids if c is not None and (c / "env.json").is_file()), None)
    if first is not None:
        env = env_section(read_json(first / "env.json"),
                          note=f"From the first trial's env.json ({first.name}).")
        if env:
            doc.sections.append(env)
    return doc


def _extremes(summary: list[dict[str, Any]], group_keys: list[str],
              metrics: list[str]) -> Text | None:
    """What the sweep found on its first metric: the combinations with the lowest and the
    highest median over seeds (the direction that is better depends on the metric)."""
    if not metrics:
        return None
    metric = metrics[0]
    scored = [(stat["median"], r) for r in summary
              if isinstance(stat := (r.get("metrics") or {}).get(metric), dict)
              and isinstance(stat.get("median"), int | float)]
    if len(scored) < 2:
        return None
    scored.sort(key=lambda x: x[0])

    def combo(r: dict[str, Any]) -> str:
        return " ".join(f"{k}={plain(r.get(k))}" for k in group_keys) or "the base config"

    (lo, rlo), (hi, rhi) = scored[0], scored[-1]
    return Text(f"On {metric} (median over seeds), the lowest is {combo(rlo)} ({fmt(lo)}) and "
                f"the highest {combo(rhi)} ({fmt(hi)}), of {len(scored)} combinations.")


def _params(t: dict[str, Any]) -> str:
    return " ".join(f"{k}={plain(v)}" for k, v in (t.get("params") or {}).items())


def _failed_section(failed: list[dict[str, Any]], path: Path) -> Section:
    shown = failed[:MAX_ROWS]
    rows = [[str(t.get("index")), _params(t), str(t.get("error") or "")] for t in shown]
    table = Table(["trial", "params", "error"], rows, tones=["fail"] * len(rows),
                  links=[reading.child_folder(path, t.get("run_dir")) for t in shown])
    return Section("Failed trials", [Details(f"{len(failed)} failed", [table], open=True)])


def _trials_section(trials: list[dict[str, Any]], keys: list[str], path: Path) -> Section:
    """Every trial but the failed ones (open above), by status: the completed ones folded,
    the rest (interrupted, pending) open; each row links to the trial's own page."""
    blocks: list[Any] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        if t.get("status") != "failed":
            groups.setdefault(str(t.get("status")), []).append(t)
    for status, group in sorted(groups.items(), key=lambda g: g[0] == "completed"):
        shown = group[:MAX_ROWS]
        rows = [[str(t.get("index")), *(plain((t.get("params") or {}).get(k)) for k in keys),
                 status, duration(t.get("seconds")), str(t.get("run_dir"))] for t in shown]
        table = Table(["trial", *keys, "status", "duration", "folder"], rows,
                      tones=["fail" if status == "failed" else ""] * len(rows),
                      links=[reading.child_folder(path, t.get("run_dir")) for t in shown],
                      note=f"first {MAX_ROWS} of {len(group)}; sweep.json has all"
                      if len(group) > MAX_ROWS else "")
        took = sum(t["seconds"] for t in group if isinstance(t.get("seconds"), int | float))
        blocks.append(Details(f"{len(group)} {status} ({duration(took)} in all)", [table],
                              open=status != "completed"))
    note = ("A trial's number links to its own page"
            + ("; the failed trials are listed above." if any(
                t.get("status") == "failed" for t in trials) else "."))
    return Section("Trials", [Text(note), *blocks], summary=False)


def _definition_section(definition: dict[str, Any]) -> Section:
    return Section("Definition", [
        Text("The base config (without output.dir and limits) and the grid, as stored in "
             "sweep.json; `lnexp sweep --resume` compares against it."),
        Code("definition", yaml.safe_dump(definition, sort_keys=False, allow_unicode=True,
                                          default_flow_style=False).rstrip("\n"))],
        summary=False)
