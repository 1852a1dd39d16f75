"""The findings lines of the depth measurements (massive activations, kurtosis, S-curves,
intervention, layer skipping), appended to lnexp.inspect.notes' lines. Numbers only."""

from __future__ import annotations

import math

from lnexp.inspect.outcome import InspectOutcome


def _g(x: float) -> str:
    return f"{x:.3g}"


def _massive(o: InspectOutcome, ratio: float) -> list[str]:
    tops = [b for b in o.massive if b.top]
    if not tops:
        return []
    peak = max(tops, key=lambda b: b.top[0].ratio)
    e = peak.top[0]
    first = next((b for b in tops if b.top[0].ratio >= ratio), None)
    where = f"{e.token!r} (input {e.input}, position {e.position})" if e.token is not None \
        else f"input {e.input}, position {e.position}"
    line = (f"largest block output: {peak.name} dim {e.dim} = {_g(e.value)} on {where}, "
            f"{e.ratio:,.0f}× the median |x| ({_g(peak.median_abs)})")
    if first is not None:
        line += f"; ≥ {ratio:g}× from {first.name} on (depth {first.depth:.2f})"
    else:
        line += f"; no block reaches {ratio:g}× (no massive activations)"
    return [line]


def _kurtosis(o: InspectOutcome) -> list[str]:
    ks = [(r.tails_pre.kurtosis, r) for r in o.layers
          if r.tails_pre is not None and math.isfinite(r.tails_pre.kurtosis)]
    if not ks:
        return []
    k, r = max(ks, key=lambda t: t[0])
    out = r.tails_post.kurtosis if r.tails_post is not None else math.nan
    return [f"kurtosis of {r.name}'s input is {k:,.0f} (Gaussian: 3; max |x| "
            f"{_g(r.tails_pre.absmax)}), {out:,.1f} after it"]  # type: ignore[union-attr]


def _ablation(o: InspectOutcome) -> list[str]:
    a = o.ablation
    if a is None:
        return []
    what = "loss" if a.measure == "next_token_loss" else "output change"
    lines = []
    iv = a.intervention
    if iv is not None:
        lines.append(f"massive activations at {iv.block} (dims {', '.join(map(str, iv.dims))},"
                     f" {iv.entries} entries): {what} {_g(a.baseline)} → {_g(iv.zeroed)} "
                     f"zeroed, {_g(iv.mean)} set to their mean, {_g(iv.random)} with as many "
                     f"random entries zeroed")
    elif a.note:
        lines.append(a.note)
    if a.skips:
        worst = max(a.skips, key=lambda s: s.value if math.isfinite(s.value) else -math.inf)
        least = min(a.skips, key=lambda s: s.value if math.isfinite(s.value) else math.inf)
        lines.append(f"skipping one block: {worst.block}"
                     f" costs most ({what} {_g(worst.value)}), {least.block} least "
                     f"({_g(least.value)}); untouched {_g(a.baseline)}")
    return lines


def depth_lines(o: InspectOutcome) -> list[str]:
    ratio = float(o.options.get("massive_ratio", 100.0))
    return _massive(o, ratio) + _kurtosis(o) + _ablation(o)
