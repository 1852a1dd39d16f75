"""`lnexp sweep` without the CLI: plan a sweep (definition, trials, resume policy, memory
guard), then run it (sweep folder, trial resets, sweep.json updates, interrupts, summary).

plan_sweep validates everything before anything runs (exit 2 for a bad grid or trial);
run_sweep runs the trials on worker processes and returns a SweepOutcome the CLI renders.
Nothing here prints: progress goes through the `progress` factory the caller passes in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lnexp import plan, resources
from lnexp.config import read_raw, to_dict
from lnexp.errors import ConfigError, RunFolderError
from lnexp.store import documents, files
from lnexp.sweep import executors, grid, summary, workers
from lnexp.sweep.folder import SweepFolder


class TrialProgress(Protocol):
    """What run_sweep reports each finished trial to (tables.SweepProgress)."""

    def trial_done(self, label: str, outcome: workers.Outcome) -> None: ...


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep, before anything runs (what --dry-run shows)."""

    definition: grid.Definition
    trials: list[grid.Trial]
    metrics: list[str]
    root: Path  # where the sweep folder goes (the folder itself when resuming)
    jobs: int
    resume: SweepFolder | None
    x: str | None
    executor: executors.Executor = executors.LOCAL
    jobs_given: bool = False  # -j given (on an existing Dask cluster it caps trials in flight)

    @property
    def name(self) -> str:
        return self.trials[0].config.name


@dataclass(frozen=True)
class SweepOutcome:
    """A sweep that ran (completely or partly)."""

    plan: SweepPlan
    folder: SweepFolder
    rows: list[dict[str, Any]]  # the summary, one row per combination of non-seed keys
    skipped: int  # trials already completed by an earlier session

    @property
    def sweep_dir(self) -> Path:
        return self.folder.path

    @property
    def counts(self) -> dict[str, int]:
        return self.folder.counts()

    @property
    def status(self) -> str:
        """sweep.json's status: completed, partial or failed (nothing completed)."""
        return str(self.folder.doc.get("status"))

    @property
    def not_completed(self) -> list[dict[str, Any]]:
        return [t for t in self.folder.trials if t["status"] != "completed"]


def plan_sweep(config: Path | None, grid_options: list[str], sets: list[str],
               seeds: int | None, metric: list[str], resume: Path | None,
               output_dir: Path | None, jobs: int | None, x: str | None,
               executor: executors.Executor | None = None) -> SweepPlan:
    """Everything `lnexp sweep` checks before it runs: the definition (from CONFIG, or the one
    stored in a --resume folder), that a resumed definition is unchanged, every trial's config,
    the memory guard on each trial, the metrics and --x."""
    metrics = grid.check_metrics(list(metric or summary.DEFAULT_METRICS))
    folder: SweepFolder | None = None
    if resume is not None:
        folder = SweepFolder.load(resume)
        metrics = grid.check_metrics(list(metric or folder.doc["metrics"]))
    if config is not None:
        raw, lines = read_raw(config)
        d = grid.definition(raw, grid_options, source=str(config), lines=lines, sets=sets,
                            seeds=seeds)
        if d.metrics and not metric and folder is None:
            metrics = d.metrics
    elif folder is not None:
        if grid_options or sets or seeds:
            raise ConfigError(["--resume without CONFIG reuses the stored definition; give "
                               "CONFIG too to check --grid/--set/--seeds against it"])
        d = grid.from_stored(folder.doc["definition"], source=str(resume / "sweep.json"))
    else:
        raise ConfigError(["give a CONFIG (e.g. lnexp sweep configs/sweep_batch.yaml) or "
                           "--resume SWEEP_DIR"])
    if folder is not None:
        diff = grid.definition_diff(folder.doc["definition"], d.as_dict())
        if diff:
            raise ConfigError([f"{resume}: the sweep definition changed; refusing to resume "
                               f"(start a new sweep, or resume with the same config, --grid, "
                               f"--set and --seeds):", *diff])
    root = folder.path if folder is not None else Path(
        str(output_dir) if output_dir is not None else d.base.get("output", {}).get("dir")
        or "outputs")
    trials = grid.expand(d, output_dir=str(root))
    if folder is not None:
        _same_trials(folder, trials)
    guard(trials, d.size)
    summary.x_key(d, x)  # a bad --x is an error before anything runs
    return SweepPlan(d, trials, metrics, root, jobs or workers.default_jobs(), folder, x,
                     executor or executors.LOCAL, jobs is not None)


def _same_trials(folder: SweepFolder, trials: list[grid.Trial]) -> None:
    """A resumed sweep.json lists the definition's trials, each in the folder lnexp names it
    (what --resume may remove and rerun); RunFolderError naming the first that differs."""
    where = folder.path / "sweep.json"
    if len(folder.trials) != len(trials):
        raise RunFolderError(f"{where}: lists {len(folder.trials)} trials, its definition has "
                             f"{len(trials)}; refusing to resume")
    for t in trials:
        if folder.trials[t.index]["run_dir"] != t.dirname:
            raise RunFolderError(f"{where}: trial {t.index}: run_dir "
                                 f"{folder.trials[t.index]['run_dir']!r}, expected "
                                 f"{t.dirname!r}; refusing to resume")
        folder.trial_path(t.index)  # not a symlink: before anything is written


def guard(trials: list[grid.Trial], size: int) -> None:
    """Expectations a trial cannot produce (as `validate` refuses them) and the memory guard
    on this machine, for every trial: one ConfigError for all refusals. A norm that is not
    defined for one trial's input (bn on a batch of 1) is not refused here: that trial fails
    and the others run (exit 3)."""
    problems: list[str] = []
    for t in trials:
        problems.extend(f"trial {t.index} ({t.label}): {p}"
                        for p in plan.expectation_problems(t.config))
        try:
            resources.check(t.config)
        except ConfigError as exc:
            problems.extend(f"trial {t.index} ({t.label}): {p}" for p in exc.problems)
    if problems:
        raise grid.invalid_trials(problems, size)


@contextlib.contextmanager
def _no_progress(total: int, skipped: int) -> Iterator[None]:
    yield None


def run_sweep(plan: SweepPlan, argv: list[str], *, fail_fast: bool = False,
              figure: bool = True,
              progress: Callable[[int, int], contextlib.AbstractContextManager[
                  TrialProgress | None]] = _no_progress) -> SweepOutcome:
    """Run a planned sweep: create (or resume) the sweep folder, skip completed trials, reset
    and rerun the others on worker processes, keep sweep.json current, then write the
    summary. `progress(total, skipped)` gives the reporter for finished trials. On Ctrl-C the
    sweep is marked interrupted and KeyboardInterrupt propagates."""
    figures = any(t.config.output.figures for t in plan.trials)
    # The executor first: a Dask cluster that cannot be reached fails before any folder exists
    with executors.session(plan.executor, plan.jobs, jobs_given=plan.jobs_given,
                           figures=figures) as execute:
        folder, run_folder = _open_folder(plan, argv)
        return _run(plan, folder, run_folder, execute, fail_fast, figure, progress)


def _open_folder(plan: SweepPlan, argv: list[str]) -> tuple[SweepFolder, files.RunFolder]:
    """A new sweep folder (sweep.json, run.json), or the resumed one with a new session."""
    where = plan.executor.describe()
    if plan.resume is None:
        root = files.ensure_output_dir(plan.root)
        sweep_dir = files.create_run_dir(root, f"{plan.name}-sweep")
        run_folder = files.RunFolder(sweep_dir, "sweep", argv, name=plan.name,
                                     norm=_norms(plan))
        folder = SweepFolder.create(sweep_dir, plan.definition, plan.trials, argv,
                                    plan.metrics, plan.jobs, where,
                                    threads=workers.TRIAL_THREADS)
    else:
        folder = plan.resume
        folder.resumed(argv, plan.jobs, where)  # refused while another session runs it
        run_folder = files.RunFolder.resume(folder.path, "sweep", argv, name=plan.name,
                                            norm=_norms(plan))
    return folder, run_folder


def _norms(plan: SweepPlan) -> str:
    """The norms a sweep covers, as `lnexp runs` lists them (bn,ln,rms)."""
    return ",".join(sorted({t.config.model.norm for t in plan.trials}))


def _run(plan: SweepPlan, folder: SweepFolder, run_folder: files.RunFolder,
         execute: executors.Run, fail_fast: bool, figure: bool,
         progress: Callable[[int, int], contextlib.AbstractContextManager[
             TrialProgress | None]]) -> SweepOutcome:
    d, trials = plan.definition, plan.trials
    by_index = {t.index: t for t in trials}
    todo = [t for t in trials if not folder.trial_done(folder.trials[t.index], t.hash,
                                                       workers.TRIAL_THREADS)]
    skipped = len(trials) - len(todo)
    hold = workers.hold_s()
    with run_folder.tracking():
        tasks = [workers.Task(t.index, to_dict(t.config), str(folder.reset_trial(t.index)),
                              argv=run_folder.info["argv"], hold_s=hold) for t in todo]
        with progress(len(trials), skipped) as reporter:
            def started(task: workers.Task) -> None:
                folder.update(task.index, status="running", error=None)

            def done(task: workers.Task, outcome: workers.Outcome) -> None:
                folder.update(task.index, status=outcome["status"], error=outcome["error"],
                              seconds=outcome["seconds"], cpu_seconds=outcome["cpu_seconds"],
                              threads=outcome["threads"], worker_pid=outcome["pid"],
                              worker_host=outcome["host"])
                if reporter is not None:
                    reporter.trial_done(f"{folder.trials[task.index]['run_dir']} "
                                        f"({by_index[task.index].label})", outcome)

            try:
                execute(tasks, fail_fast, started, done)
            except KeyboardInterrupt:
                folder.finish("interrupted")
                raise
        rows = write_summary(folder, d, plan.metrics, plan.x, trials[0].config.output.dpi,
                             figure)
        counts = folder.counts()
        bad = counts["total"] - counts["completed"]
        run_folder.describe(trials={"completed": counts["completed"],
                                    "total": counts["total"]})
        status = sweep_status(counts)
        if status == "failed":
            run_folder.mark_failed(f"nothing completed: 0 of {counts['total']} trials")
        elif bad:
            run_folder.mark_partial(f"{bad} of {counts['total']} trials not completed")
        folder.finish(status, rows)
    return SweepOutcome(plan, folder, rows, skipped)


def sweep_status(counts: dict[str, int]) -> str:
    """completed (every trial), partial (some), failed (trials ran and none completed:
    nothing to summarize, no summary.png)."""
    if counts["completed"] == counts["total"]:
        return "completed"
    return "partial" if counts["completed"] else "failed"


def write_summary(folder: SweepFolder, d: grid.Definition, metrics: list[str], x: str | None,
                  dpi: int, figure: bool) -> list[dict[str, Any]]:
    """summary.csv (and summary.png) from the completed trials' metrics.json."""
    groups = summary.aggregate(d.group_keys, folder.completed_metrics(), metrics)
    rows = documents.summary_rows(groups, d.group_keys, metrics)
    files.write_atomic(folder.path / "summary.csv",
                       documents.summary_csv(rows, d.group_keys, metrics))
    drawn = any(r["completed"] for r in rows)  # nothing completed: no empty-axes figure
    x_key = summary.x_key(d, x) if figure and drawn else None
    if x_key is not None:
        from lnexp.figures import FIGURES
        from lnexp.store.figures import save_figure

        train = d.base.get("train") or {}
        chance = 1 / train["outputs"] if train.get("task", "clusters") != "teacher" and \
            train.get("outputs") else None
        title = f"{d.base.get('name', 'default')} sweep"
        fig = FIGURES["sweep_summary"](rows, d.group_keys, metrics, x_key, title=title,
                                       chance=chance)
        save_figure(fig, folder.path / "summary.png", dpi)
    return rows
