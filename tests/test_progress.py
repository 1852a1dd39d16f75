"""lnexp.progress: a bar on a terminal, sparse plain lines elsewhere, nothing when quiet."""

from __future__ import annotations

import io

from rich.console import Console

from lnexp import progress
from lnexp.tables import SweepProgress


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=80), out


def test_plain_lines_are_sparse() -> None:
    c, out = _console(terminal=False)
    with progress.steps("samples", console=c) as update:
        for done in range(1, 1001):
            update(done, 1000, "")
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1] == "samples 1000/1000"


def test_notes_follow_the_count() -> None:
    c, out = _console(terminal=False)
    with progress.steps("training step", console=c) as update:
        update(3, 3, "loss 0.5")
    assert out.getvalue() == "training step 3/3  loss 0.5\n"


def test_quiet_prints_nothing() -> None:
    c, out = _console(terminal=True)
    with progress.steps("samples", console=c, quiet=True) as update:
        update(1, 2, "")
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar() -> None:
    c, out = _console(terminal=True)
    with progress.steps("samples", console=c) as update:
        update(5, 10, "pass 1/2")
    text = out.getvalue()
    assert "samples" in text and "5/10" in text and "━" in text


def test_quiet_sweep_keeps_a_line_per_trial_and_no_bar() -> None:
    c, out = _console(terminal=True)
    with SweepProgress(2, console=c, bar=False) as bar:
        bar.trial_done("model.norm=bn", {"status": "completed", "seconds": 0.1})
        bar.trial_done("model.norm=ln", {"status": "completed", "seconds": 0.2})
    text = out.getvalue()
    assert "[1/2] completed model.norm=bn" in text and "[2/2] completed" in text
    assert "━" not in text
