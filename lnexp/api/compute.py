"""The commands that compute, as functions: what `lnexp run`, `compare`, `sweep` and `inspect`
do between parsing and rendering. The CLI and the public API (lnexp.api) both call these, so a
folder is written the same way from both. Nothing here prints, installs a signal handler or
exits; progress goes to the callback given, or nowhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lnexp import core
    from lnexp.config import Config
    from lnexp.inspect import InputSpec, InspectOptions
    from lnexp.inspect.outcome import InspectOutcome
    from lnexp.sweep.runner import SweepOutcome, SweepPlan

Update = Callable[[int, int, str], None]


@contextlib.contextmanager
def _nothing(*args: Any) -> Iterator[None]:
    yield None


def run(cfg: Config, source: str | None, argv: list[str],
        progress: Callable[[], contextlib.AbstractContextManager[Update | None]] | None = None,
        before: Callable[[Path], None] | None = None) -> core.RunOutcome:
    """`lnexp run` on a validated config: refusals and the memory guard first, then a new
    run folder under output.dir. `progress()` is entered once the figure workers started."""
    from lnexp import core, registry, resources
    from lnexp.store import figures, files

    core.refuse(cfg, source)  # what validate reports too; before any folder or worker
    resources.check(cfg)
    root = files.ensure_output_dir(Path(cfg.output.dir))
    # Figure workers start now, before torch is imported: matplotlib loads in parallel.
    with figures.figure_pool(cfg.output, len(registry.run_figures(cfg))) as pool, \
            (progress or _nothing)() as update:
        return core.run(cfg, root, argv, update, before, pool)


def compare(cfg: Config, selected: list[str] | None, source: str, argv: list[str],
            progress: Callable[[], contextlib.AbstractContextManager[Update | None]] | None = None,
            ) -> core.CompareOutcome:
    """`lnexp compare`: the chosen norms (default: the classic six defined on data.layout)."""
    from lnexp import core, norms, resources
    from lnexp.compare import norm_configs
    from lnexp.store import figures, files

    resources.check(cfg, runs=len(selected) if selected
                    else len(norms.compare_default(cfg.data.layout)))
    configs = norm_configs(cfg, selected, source)  # before any folder, the output root too
    root = files.ensure_output_dir(Path(cfg.output.dir))
    # Figure workers start before torch is imported (core imports it lazily).
    with figures.figure_pool(cfg.output, core.compare_figure_count(cfg, configs)) as pool, \
            (progress or _nothing)() as update:
        return core.compare(cfg, configs, root, argv, pool, update)


def plan_sweep(config: Path | None, grid: list[str], sets: list[str], seeds: int | None,
               metrics: list[str], resume: Path | None, output_dir: Path | None,
               jobs: int | None, x: str | None, executor: str | None = None,
               scheduler: str | None = None, collect: bool = False, **dask: Any) -> SweepPlan:
    """Everything a sweep checks before it runs (lnexp.sweep.runner.plan_sweep); `dask`:
    scheduler_file, wait_workers, wait_timeout (lnexp.sweep.executors.choose)."""
    from lnexp.sweep import executors, runner

    return runner.plan_sweep(config, grid, sets, seeds, metrics, resume, output_dir, jobs, x,
                             executors.choose(executor, scheduler, collect, **dask))


def sweep(plan: SweepPlan, argv: list[str], fail_fast: bool = False, figure: bool = True,
          progress: Any = None) -> SweepOutcome:
    """Run a planned sweep; `progress(total, skipped)` as lnexp.sweep.runner.run_sweep."""
    from lnexp.sweep import runner

    return runner.run_sweep(plan, argv, fail_fast=fail_fast, figure=figure,
                            progress=progress or runner._no_progress)


def inspect(model: str, spec: InputSpec, options: InspectOptions, output_dir: Path,
            argv: list[str], expect: list[str], figures: bool = True,
            progress: Callable[[], contextlib.AbstractContextManager[Update | None]] | None = None,
            ) -> tuple[InspectOutcome, Path, dict[str, Any], list[dict[str, Any]]]:
    """`lnexp inspect`: measure MODEL's norm layers, write the folder, evaluate --expect."""
    from lnexp.inspect import expect as inspect_expect
    from lnexp.inspect.files import inspect_into_folder
    from lnexp.store.files import ensure_output_dir

    inspect_expect.parse(expect)  # a malformed expectation fails before any work
    root = ensure_output_dir(output_dir)
    with (progress or _nothing)() as update:
        outcome, run_dir, doc = inspect_into_folder(model, spec, options, root, argv, update,
                                                    figures)
    return outcome, run_dir, doc, inspect_expect.evaluate(doc, expect)


def inspect_many(models: list[str], spec: InputSpec, options: InspectOptions, output_dir: Path,
                 argv: list[str], expect: list[str], figures: bool = True,
                 progress: Callable[[], contextlib.AbstractContextManager[Update | None]] | None
                 = None) -> tuple[list[InspectOutcome], Path, dict[str, Any], list[dict[str, Any]]]:
    """`lnexp inspect A B ...`: each model measured, one folder with a child per model and the
    side-by-side tables and figures; --expect checks side_by_side.json."""
    from lnexp.inspect import expect as inspect_expect
    from lnexp.inspect.multi import inspect_many as many
    from lnexp.store.files import ensure_output_dir

    inspect_expect.parse(expect)
    root = ensure_output_dir(output_dir)
    with (progress or _nothing)() as update:
        outcomes, run_dir, doc = many(models, spec, options, root, argv, update, figures)
    return outcomes, run_dir, doc, inspect_expect.evaluate(doc, expect)
