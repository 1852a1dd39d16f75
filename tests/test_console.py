"""lnexp.console: plain output honours COLUMNS and carries no trailing spaces."""

from __future__ import annotations

import io

import pytest
from rich.table import Table

from lnexp import console


def test_width_from_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert console.width_from_env() == 60
    for bad in ("", "x", "3"):
        monkeypatch.setenv("COLUMNS", bad)
        assert console.width_from_env() == console.PIPE_WIDTH


def test_plain_console_strips_trailing_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setenv("COLUMNS", "50")
    c = console.make_console()
    t = Table(title="t")
    t.add_column("a")
    t.add_column("b", justify="right")
    t.add_row("x", "1")
    t.add_row("a longer cell", "")
    c.print(t)
    c.print("end   ")
    text = out.getvalue()
    assert text.endswith("end\n")
    assert all(line == line.rstrip(" ") for line in text.splitlines())
    assert "a longer cell" in text
