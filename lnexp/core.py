"""One call per command that computes: a run or a compare, written into its folder, returned
as a typed outcome (the result, where it was written, the explanation, the expectation
results) that the CLI renders. Data flows one way: config -> experiment -> outcome -> store.

Nothing here prints; torch is imported only when something is computed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnexp import config, explain, history, plan, registry
from lnexp.errors import ConfigError, NotDefinedError
from lnexp.store import documents, files
from lnexp.store.figures import FigureJob, FigurePool, render_figures

if TYPE_CHECKING:
    from lnexp.config import Config
    from lnexp.expect import Result
    from lnexp.explain import NormLines
    from lnexp.results import CompareResult, RunResult
    from lnexp.training import Progress


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run whose folder already holds what was recorded."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir


@dataclass(frozen=True)
class RunOutcome:
    """One computed run and its folder."""

    result: RunResult
    run_dir: Path
    document: dict[str, Any]  # metrics.json as written
    explanation: list[str]
    expectations: list[Result]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.expectations if not r["passed"]]


@dataclass(frozen=True)
class CompareOutcome:
    """Every requested norm on the same inputs, and the compare folder."""

    result: CompareResult
    compare_dir: Path
    document: dict[str, Any]  # comparison.json as written
    explanations: list[NormLines]
    axes: str

    @property
    def missing(self) -> str:
        """Why norms were not computed, '; '-joined ('' when every norm was)."""
        return "; ".join(o.reason or o.name for o in self.result.not_computed)


# --------------------------------------------------------------------------- run

def _figure_jobs(result: RunResult, path: Path) -> list[FigureJob]:
    specs = registry.run_figures(result.config)
    if specs:
        files.make_dir(path / "figures")
    return [FigureJob(f.name, result, path / f.file, result.config.output.dpi) for f in specs]


def _prepare(result: RunResult, path: Path, argv: list[str]) -> list[FigureJob]:
    """Write config.yaml, env.json and stats.csv (history.csv); return the figures to draw."""
    cfg = result.config
    files.write_atomic(path / "config.yaml", config.to_yaml(cfg))
    files.write_atomic(path / "env.json", files.dumps(files.env_info(cfg, argv)))
    files.write_atomic(path / "stats.csv", documents.stats_csv(result))
    if result.training is not None:
        files.write_atomic(path / "history.csv", documents.history_csv(result.training))
    return _figure_jobs(result, path)


def _finish(result: RunResult, path: Path) -> tuple[dict[str, Any], list[str], list[Result]]:
    """Write metrics.json, the last file of a run folder."""
    from lnexp import expect

    lines = explain.lines(result)
    doc = documents.metrics(result, lines)
    # Evaluated on the document itself, exactly as `lnexp check` does on a saved file.
    results = expect.evaluate(doc, config.expect_dict(result.config))
    doc["expectations"] = results
    files.write_atomic(path / "metrics.json", files.dumps(doc))
    return doc, lines, results


def refuse(cfg: Config, source: str | None = None) -> None:
    """Raise what `run` refuses for the config alone (plan.refusals; exit 2), one line each,
    prefixed by `source`: NotDefinedError when the norm is not defined for this input, else
    ConfigError. `lnexp run` calls it before anything is created, `validate` reports the same
    lines."""
    problems = plan.refusals(cfg)
    if not problems:
        return
    lines = [f"{source}: {p}" if source else p for p in problems]
    if plan.not_defined_reason(cfg):
        raise NotDefinedError("\n".join(lines))
    raise ConfigError(lines)


def _require_defined(cfg: Config) -> None:
    refuse(cfg)
    reason = _no_gpu(cfg)  # needs torch, so not in plan.refusals (validate stays torch-free)
    if reason:
        raise NotDefinedError(reason)


def _no_gpu(cfg: Config) -> str | None:
    """Why `device: cuda` cannot run here, or None (torch is imported only for cuda)."""
    if cfg.device != "cuda":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return ("device: cuda, but torch sees no CUDA GPU (torch.cuda.is_available() is false) "
            "- use device: cpu, or auto to take a GPU only when there is one")


def run_in_folder(cfg: Config, run_dir: Path, argv: list[str],
                  progress: Progress | None = None,
                  before: Callable[[], None] | None = None,
                  pool: FigurePool | None = None) -> RunOutcome:
    """Compute one run and write it into the existing folder `run_dir`, its status tracked in
    run.json: the one way `run`, sweep trials and tests produce a run folder. A norm not
    defined for this input fails the folder; a training run stopped by Ctrl-C is written as
    recorded, then marked interrupted (RunInterrupted)."""
    return _compute_into(cfg, run_dir, argv, progress, before, pool, check=True)


def _compute_into(cfg: Config, run_dir: Path, argv: list[str], progress: Progress | None,
                  before: Callable[[], None] | None, pool: FigurePool | None,
                  check: bool) -> RunOutcome:
    # run.json first: the torch import below takes seconds, and a folder killed or
    # interrupted in them must already say what it is (never a folder without run.json).
    folder = files.RunFolder(run_dir, "run", argv, name=cfg.name, norm=cfg.model.norm)
    with folder.tracking():
        from lnexp import experiment  # torch: imported only when something is computed

        if check:
            _require_defined(cfg)
        if before is not None:
            before()
        result = experiment.run(cfg, progress)
        render_figures(_prepare(result, run_dir, argv), cfg.output.workers, pool)
        doc, lines, results = _finish(result, run_dir)
        folder.describe(**history.listed(doc))
        if result.training is not None and result.training.interrupted:
            raise RunInterrupted(run_dir)
    return RunOutcome(result, run_dir, doc, lines, results)


def run(cfg: Config, root: Path, argv: list[str], progress: Progress | None = None,
        before: Callable[[Path], None] | None = None,
        pool: FigurePool | None = None) -> RunOutcome:
    """`lnexp run`: check the norm is defined here, make a new run folder under `root`, compute
    and write it. `before(run_dir)` runs once the folder is marked running."""
    _require_defined(cfg)  # before a folder exists: nothing to clean up
    run_dir = files.create_run_dir(root, cfg.name)
    try:
        return _compute_into(cfg, run_dir, argv, progress,
                             (lambda: before(run_dir)) if before else None, pool, check=False)
    except RunInterrupted:
        raise
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir) from None


# --------------------------------------------------------------------------- compare

def compare_figure_count(cfg: Config, configs: dict[str, Config]) -> int:
    """How many PNGs a compare renders at most: each norm's run figures plus its own."""
    return (len(registry.compare_figures(cfg))
            + sum(len(registry.run_figures(c)) for c in configs.values()))


def compare(cfg: Config, configs: dict[str, Config], root: Path, argv: list[str],
            pool: FigurePool | None = None, update: Progress | None = None) -> CompareOutcome:
    """`lnexp compare`: run each norm's config (from compare.norm_configs) on the same inputs
    and write one run folder per computed norm, the comparison figures, comparison.csv and
    comparison.json (last). The folder ends 'partial' when some norm was not computed.
    `update` (lnexp.progress) hears of each norm, then of the figures and files."""
    from lnexp import compare as comparing

    compare_dir = files.create_run_dir(root, f"{cfg.name}-compare")
    folder = files.RunFolder(compare_dir, "compare", argv, name=cfg.name,
                             norm=",".join(configs))
    with folder.tracking():
        steps = len(configs) + 1  # each norm, then the figures and files
        cmp = comparing.compare(cfg, configs=configs, update=update, steps=steps)
        if update is not None:
            update(len(configs), steps, "drawing figures, writing files")
        folder.describe(norm=",".join(o.name for o in cmp.outcomes),
                        norms={"completed": sum(o.result is not None for o in cmp.outcomes),
                               "total": len(cmp.outcomes)})
        if cmp.not_computed:
            folder.mark_partial("not computed: " + "; ".join(
                o.reason or o.name for o in cmp.not_computed))
        explanations = explain.compare_lines(cmp)
        axes = explain.axes_text(cfg)
        doc = _write_compare(cmp, compare_dir, argv, explanations, axes, pool)
        if update is not None:
            update(steps, steps, "done")
    return CompareOutcome(cmp, compare_dir, doc, explanations, axes)


def _write_compare(cmp: CompareResult, path: Path, argv: list[str],
                   explanations: list[NormLines], axes: str,
                   pool: FigurePool | None) -> dict[str, Any]:
    cfg = cmp.config
    with contextlib.ExitStack() as stack:
        # Every norm's folder is prepared first, then all figures render together (in
        # parallel), then each folder gets its metrics.json last and is marked completed.
        jobs = [FigureJob(f.name, cmp, path / f.file, cfg.output.dpi)
                for f in registry.compare_figures(cfg)]
        runs: list[tuple[RunResult, Path, files.RunFolder]] = []
        for o in cmp.outcomes:
            if o.result is None:
                continue
            sub = path / o.folder
            files.make_dir(sub)
            run_folder = stack.enter_context(files.RunFolder(
                sub, "run", argv, name=cfg.name, norm=o.name).tracking())
            jobs += _prepare(o.result, sub, argv)
            runs.append((o.result, sub, run_folder))
        files.write_atomic(path / "config.yaml", config.to_yaml(cfg))
        files.write_atomic(path / "env.json", files.dumps(files.env_info(cfg, argv)))
        render_figures(jobs, cfg.output.workers, pool)
        for result, sub, run_folder in runs:
            run_folder.describe(**history.listed(_finish(result, sub)[0]))
    doc = documents.comparison(cmp, explanations, axes)
    files.write_atomic(path / "comparison.csv", documents.comparison_csv(doc))
    files.write_atomic(path / "comparison.json", files.dumps(doc))
    return doc
