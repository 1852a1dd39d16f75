"""Expectations on inspect.json, e.g. `--expect 'layers.2.pre.outliers.0.ratio.max >= 100'`.

A key is `PATH.REDUCER`: PATH is dotted into the document, a number indexes a list, `*` takes
every element (`layers.*.quant.per_token_sqnr_db.min >= 20`), and `layers[NAME]` picks a layer
by its module name (`layers[encoder.layer.5.output.LayerNorm].weight.smallest_abs.0.value`).
REDUCER, OP and VALUE are lnexp's usual ones (lnexp.expect): abs_max min max mean spread;
<= >= < > ~= (tol T). The results have the shape of lnexp.expect.evaluate's, so the same table
renders them. A PATH that is not in the document is an InspectError (exit 2) with a hint.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from lnexp import expect as lnexp_expect
from lnexp.inspect.errors import InspectError

EXAMPLE = ("expected 'PATH.REDUCER OP VALUE', e.g. 'layers.*.quant.per_token_sqnr_db.min >= 20' "
           "or 'layers.0.pre.per_token.var.max approx 1 tol 1e-3'")
_SEGMENT = re.compile(r"([^.\[\]]+)(?:\[([^\]]+)\])?")


def parse(texts: list[str]) -> list[tuple[str, list[str], str, dict[str, Any]]]:
    """Check the grammar before anything runs: (key, path parts, reducer, bounds) each."""
    out, problems = [], []
    for text in texts:
        try:
            key, bounds = lnexp_expect.parse_cli(text)
        except ValueError as exc:
            why = str(exc) if not str(exc).startswith("expected") else EXAMPLE
            problems.append(f"--expect {text!r}: {why}")
            continue
        path, _, reducer = key.rpartition(".")
        if reducer not in lnexp_expect.REDUCERS or not path:
            problems.append(f"--expect {text!r}: end the key with a reducer: "
                            f"{', '.join(lnexp_expect.REDUCERS)} (e.g. "
                            f"'layers.*.quant.per_token_sqnr_db.min >= 20')")
            continue
        out.append((key, _split(path), reducer, bounds))
    if problems:
        raise InspectError("; ".join(problems))
    return out


def _split(path: str) -> list[str]:
    parts: list[str] = []
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if not m:
            raise InspectError(f"--expect: cannot read the path {path!r}")
        parts.append(m[1])
        if m[2] is not None:
            parts.append(f"[{m[2]}]")
        pos = m.end() + 1  # skip the dot
    return parts


def _walk(node: Any, parts: list[str], done: list[str]) -> list[Any]:
    if not parts:
        return node if isinstance(node, list) and done and done[-1] == "*" else [node]
    head, rest = parts[0], parts[1:]
    here = ".".join(done) or "the document"
    if isinstance(node, list):
        if head == "*":
            return [v for item in node for v in _walk(item, rest, [*done, "*"])]
        if head.startswith("["):
            name = head[1:-1]
            hits = [item for item in node if isinstance(item, Mapping) and item.get("name") == name]
            if not hits:
                names = [str(i.get("name")) for i in node if isinstance(i, Mapping)]
                hint = difflib.get_close_matches(name, names, n=1)
                raise KeyError(f"no layer named {name!r} in {here}"
                               + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            return _walk(hits[0], rest, [*done, head])
        if head.isdigit() and int(head) < len(node):
            return _walk(node[int(head)], rest, [*done, head])
        raise KeyError(f"{here} is a list of {len(node)}: use an index 0..{len(node) - 1}, * "
                       f"or [NAME]")
    if isinstance(node, Mapping) and head in node:
        return _walk(node[head], rest, [*done, head])
    keys = list(node) if isinstance(node, Mapping) else []
    hint = difflib.get_close_matches(head, keys, n=1)
    raise KeyError(f"{head!r} is not in {here}" + (f" (did you mean {hint[0]!r}?)" if hint else
                                                   f" (keys: {', '.join(keys)})" if keys else ""))


def evaluate(doc: Mapping[str, Any], texts: list[str]) -> list[dict[str, Any]]:
    """Evaluate `--expect` texts on an inspect.json document."""
    results = []
    for key, parts, reducer, bounds in parse(texts):
        try:
            found = _walk(doc, parts, [])
        except KeyError as exc:
            raise InspectError(f"--expect {key}: {exc.args[0]}") from None
        values = [v for x in found for v in (x if isinstance(x, list) else [x])]
        if any(isinstance(v, (Mapping, list)) for v in values):
            raise InspectError(f"--expect {key}: {'.'.join(parts)} is not a number or a list "
                               f"of numbers")
        value = lnexp_expect.reduce(values, reducer)
        tol = bounds.get("tol")
        for op in lnexp_expect.OPS:
            bound = bounds.get(op)
            if bound is None:
                continue
            t = (lnexp_expect.DEFAULT_TOL if tol is None else tol) if op == "approx" else None
            results.append({
                "expectation": f"{key} {lnexp_expect.OP_SYMBOLS[op]} {bound:g}"
                               + (f" ± {t:g}" if t is not None else ""),
                "metric": ".".join(parts), "path": ".".join(parts), "reducer": reducer,
                "op": op, "bound": bound, "tol": t,
                "value": value if math.isfinite(value) else None,
                "passed": lnexp_expect.compare(value, op, bound, t),
                "note": None if math.isfinite(value) else "the value is null (NaN/Inf)"})
    return results
