"""Sweep summary statistics: the trials' metrics aggregated per combination of the non-seed
keys (mean, std over seeds, n). Pure: reads metrics.json documents, writes nothing."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lnexp import expect, registry
from lnexp.errors import ConfigError
from lnexp.sweep.grid import SEED_KEY, Definition

# What a sweep aggregates without --metric or a `metrics:` block.
DEFAULT_METRICS = registry.HEADLINE_METRICS


@dataclass(frozen=True)
class Stat:
    """mean ± std over the finite values of one metric in one group (std: n - 1; None when
    n < 2), and their median, min and max (what a ratio spanning decades is read by)."""

    mean: float | None
    std: float | None
    n: int
    median: float | None = None
    min: float | None = None
    max: float | None = None


def mean_std(values: Sequence[float]) -> Stat:
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return Stat(None, None, 0)
    mean = math.fsum(xs) / len(xs)
    order = sorted(xs)
    mid = len(order) // 2
    median = order[mid] if len(order) % 2 else (order[mid - 1] + order[mid]) / 2
    if len(xs) < 2:
        return Stat(mean, None, 1, median, order[0], order[-1])
    var = math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return Stat(mean, math.sqrt(var), len(xs), median, order[0], order[-1])


@dataclass(frozen=True)
class Group:
    """One summary row: a combination of the non-seed keys and its metrics over seeds."""

    params: dict[str, Any]
    completed: int
    failed: int
    stats: dict[str, Stat]
    trials: list[int]


def aggregate(group_keys: Sequence[str], trials: Sequence[Mapping[str, Any]],
              metrics: Sequence[str]) -> list[Group]:
    """One Group per combination of `group_keys`, in grid order. Each trial is a mapping with
    `index`, `params`, `status` and `metrics` (its metrics.json document, or None)."""
    order: dict[tuple[str, ...], dict[str, Any]] = {}
    members: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for t in trials:
        params = {k: t["params"][k] for k in group_keys}
        key = tuple(json.dumps(params[k], sort_keys=True) for k in group_keys)
        order.setdefault(key, params)
        members.setdefault(key, []).append(t)
    groups = []
    for key, params in order.items():
        ts = members[key]
        done = [t for t in ts if t["status"] == "completed" and t.get("metrics") is not None]
        stats = {m: mean_std([expect.metric_value(t["metrics"], m) for t in done])
                 for m in metrics}
        groups.append(Group(params=params, completed=len(done),
                            failed=sum(t["status"] == "failed" for t in ts), stats=stats,
                            trials=[t["index"] for t in ts]))
    return groups


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def x_key(d: Definition, chosen: str | None = None) -> str | None:
    """The swept key for the figure's x axis: `chosen` (must be a swept non-seed key), else
    the first swept key with numeric values, else the first non-seed key; None if only seeds
    are swept."""
    keys = d.group_keys
    if chosen is not None:
        if chosen not in keys:
            raise ConfigError([f"--x {chosen}: not a swept key; expected one of "
                               f"{', '.join(keys) or '(only seeds are swept)'}"])
        return chosen
    for axis in d.axes:
        for i, key in enumerate(axis.keys):
            if key != SEED_KEY and _numeric([p[i] for p in axis.points]):
                return key
    return keys[0] if keys else None
