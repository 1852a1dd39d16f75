"""`lnexp speed`'s documents: speed.json, the run folder, and its expectations.

An expectation is a ratio of two norms' median times, e.g. ``rms/ln <= 5`` (eager forward),
``rms/ln compiled <= 2`` or ``dyt/ln eager forward_backward < 3``. It is checked at every
(shape, dtype) measured and its value is the worst one (the largest for <= and <, the smallest
for >= and >, the farthest for ~=), so one slow shape fails it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lnexp.errors import SpeedError
from lnexp.registry import COMPARATORS

_SYMBOL_OP = {v: k for k, v in COMPARATORS.items()}
_EXPECT = re.compile(r"^\s*(?P<ratio>\S+)(?P<quals>(?:\s+[a-z_]+)*?)\s*"
                     r"(?P<sym><=|>=|~=|<|>)\s*(?P<bound>\S+)\s*$")
SCHEMA_VERSION = 1


def parse_expectation(text: str) -> dict[str, Any]:
    """'rms/ln compiled <= 5' -> {ratio, mode, pass, op, bound}; SpeedError (exit 2) if bad."""
    from lnexp.speed import MODES, PASSES

    m = _EXPECT.match(text)
    if not m or "/" not in m["ratio"]:
        raise SpeedError(f"--expect {text!r}: expected 'NORM/NORM [eager|compiled] "
                          f"[forward|forward_backward] OP NUMBER', e.g. 'rms/ln <= 5'")
    quals = m["quals"].split()
    mode = next((q for q in quals if q in MODES), "eager")
    pass_ = next((q for q in quals if q in PASSES), "forward")
    extra = [q for q in quals if q not in MODES and q not in PASSES]
    if extra or len(quals) > 2:
        raise SpeedError(f"--expect {text!r}: {' '.join(extra or quals)!r} is not one of "
                          f"{', '.join(MODES + PASSES)}")
    try:
        bound = float(m["bound"])
    except ValueError:
        raise SpeedError(f"--expect {text!r}: {m['bound']!r} is not a number") from None
    return {"expectation": text.strip(), "ratio": m["ratio"], "mode": mode, "pass": pass_,
            "op": _SYMBOL_OP[m["sym"]], "bound": bound}


def _split(ratio: str, measured: set[str]) -> tuple[str, str] | None:
    """'rms/ln' -> ('rms', 'ln'); a user norm's path may hold '/', so every split is tried."""
    for i, ch in enumerate(ratio):
        if ch == "/" and ratio[:i] in measured and ratio[i + 1:] in measured:
            return ratio[:i], ratio[i + 1:]
    return None


def evaluate(cases: list[dict[str, Any]], expectations: list[str]) -> list[dict[str, Any]]:
    """Each expectation checked at every (shape, dtype); results shaped like lnexp.expect's."""
    from lnexp.expect import compare

    out = []
    for text in expectations:
        e = parse_expectation(text)
        measured = {c["norm"] for c in cases}
        pair = _split(e["ratio"], measured)
        values, note = [], None
        if pair is None:
            note = f"{e['ratio']}: both norms must be among those measured"
        else:
            values, note = _ratios(cases, pair, e["mode"], e["pass"])
        value = _worst(values, e["op"], e["bound"]) if values and note is None else None
        passed = value is not None and compare(value, e["op"], e["bound"])
        out.append({"expectation": e["expectation"], "metric": f"{e['ratio']}.{e['mode']}",
                    "reducer": e["pass"], "op": e["op"], "bound": e["bound"], "tol": None,
                    "value": value, "passed": passed, "note": note,
                    "per_case": values})
    return out


def _ratios(cases: list[dict[str, Any]], pair: tuple[str, str], mode: str, pass_: str
            ) -> tuple[list[float], str | None]:
    by = {(tuple(c["shape"]), c["dtype"], c["norm"]): c for c in cases}
    values = []
    for (shape, dtype, norm), c in by.items():
        if norm != pair[0] or (shape, dtype, pair[1]) not in by:
            continue
        num = ((c.get("timings") or {}).get(mode) or {}).get(pass_)
        den = ((by[shape, dtype, pair[1]].get("timings") or {}).get(mode) or {}).get(pass_)
        if num is None or den is None:
            return [], f"no {mode} {pass_} time for {'×'.join(map(str, shape))} {dtype}"
        values.append(num["median_ms"] / den["median_ms"])
    return values, (None if values else "the two norms were never measured at one shape")


def _worst(values: list[float], op: str, bound: float) -> float:
    if op in ("le", "lt"):
        return max(values)
    if op in ("ge", "gt"):
        return min(values)
    return max(values, key=lambda v: abs(v - bound))


def document(cases: list[Any], env: dict[str, Any], options: dict[str, Any],
             results: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    return {"kind": "speed", "environment": env, "options": options,
            "cases": [c.doc() for c in cases], "expectations": results, "wall_s": wall_s}


@contextlib.contextmanager
def folder(root: Path, argv: list[str], norms: list[str]) -> Iterator[Any]:
    """OUTPUT/speed/<stamp>-<id>/, `running` while the norms are timed: completed, partial
    (a norm could not run), interrupted (Ctrl-C) or failed, as the other commands' folders."""
    from lnexp.store.files import RunFolder, create_run_dir, ensure_output_dir

    run_dir = create_run_dir(ensure_output_dir(root), "speed")
    run = RunFolder(run_dir, "speed", argv, name="speed", norm=",".join(norms))
    with run.tracking():
        yield run


def write(run: Any, doc: dict[str, Any], figure: bool) -> None:
    """speed.json and figures/speed.png into the folder."""
    from lnexp.store.files import dumps, write_atomic

    run_dir = run.path
    write_atomic(run_dir / "speed.json", dumps({"schema_version": SCHEMA_VERSION, **doc}))
    if figure and doc["cases"]:
        from lnexp.speed_figure import draw

        (run_dir / "figures").mkdir(exist_ok=True)
        draw(doc, run_dir / "figures" / "speed.png")
    if any(c["error"] for c in doc["cases"]):
        run.mark_partial("some norms could not be timed (see speed.json)")
