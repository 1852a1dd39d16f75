"""rich renderers, one module per result kind: run, compare, sweep, runs (the list of past
results) and common (number formats, the expectations table). They take a Console (tests pass
one with record=True).

The public names stay importable from here (`from lnexp import tables; tables.render_run`).
"""

from lnexp.console import make_console
from lnexp.tables.common import expectations_table, fmt
from lnexp.tables.compare import compare_table, compare_tables, render_compare
from lnexp.tables.run import (
    axis_row_labels,
    layer_table,
    render_run,
    sample_table,
    summary_table,
    training_table,
)
from lnexp.tables.runs import render_run_details, render_runs, runs_table, runs_title
from lnexp.tables.sweep import SweepProgress, render_sweep, sweep_summary_table, trials_table

__all__ = ["SweepProgress", "axis_row_labels", "compare_table", "compare_tables",
           "expectations_table", "fmt", "layer_table", "make_console", "render_compare",
           "render_run", "render_run_details", "render_runs", "render_sweep", "runs_table",
           "runs_title", "sample_table", "summary_table", "sweep_summary_table",
           "training_table", "trials_table"]
