"""Shared fixtures: every test writes under tmp_path, never into the repo's outputs/."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lnexp.cli import app

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def pytest_configure(config: pytest.Config) -> None:
    """Render every table at the width lnexp uses when piped (120), whoever runs the suite.

    Plain text wraps at COLUMNS (lnexp.console). A serial `pytest` has no COLUMNS, but
    pytest-xdist's workers (`make test` runs `-n 2`) get COLUMNS=80, so tests that read a
    table broke under xdist as soon as a longer tmp path pushed a cell over 80. Tests of
    narrow output pass their own COLUMNS to the command they invoke."""
    os.environ["COLUMNS"] = "120"
    # One intra-op thread in the test process (lnexp's training already uses one): the suite's
    # tensors are tiny, and two OpenMP threads per process spin-wait for each other on a
    # loaded 2-core machine (`make test` runs two workers), costing CPU for nothing. Real
    # processes a test starts keep lnexp's own defaults.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# Commands that write run folders; without -o they would write into the repo's outputs/.
WRITING = ("run", "compare", "sweep", "inspect", "speed")


@pytest.fixture
def invoke(runner: CliRunner, tmp_path: Path):
    """Invoke the CLI in-process; returns the Click Result. A writing command without
    -o/--output-dir gets `-o tmp_path/out`, so no test writes outside tmp_path."""

    def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        argv = list(args)
        if argv and argv[0] in WRITING and not {"-o", "--output-dir"} & set(argv):
            argv[1:1] = ["-o", str(tmp_path / "out")]
        return runner.invoke(app, argv, env=env or {}, catch_exceptions=False)

    return _invoke


def run_json(invoke, tmp_path: Path, config: str | Path, *sets: str,
             figures: bool = False) -> dict[str, Any]:
    """`lnexp run CONFIG --json` in-process; returns the parsed document."""
    args = ["run", str(config), "--json", "-o", str(tmp_path / "out")]
    if not figures:
        args += ["--set", "output.figures=false"]
    for s in sets:
        args += ["--set", s]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# A tiny config for sweep tests (test_sweep_runner, test_sweep_cluster): 8 samples, no figures.
TINY_SWEEP = ("name: tiny\ndata:\n  n_samples: 8\nmodel:\n  in_features: 6\n  out_features: 4\n"
              "output:\n  figures: false\n")


@pytest.fixture
def tiny_sweep_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SWEEP)
    return path


def invoke_app(*args: str):
    """The CLI in-process, exceptions propagating (sweep tests read stdout and stderr)."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# --------------------------------------------------------------------------- Dask clusters

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskCluster:
    """A real Dask cluster on 127.0.0.1: `dask scheduler` plus single-threaded `dask worker`
    processes (each a nanny and its worker child), started as the CLI would be on a cluster
    and stopped by pid, children included."""

    def __init__(self, workers: int = 2):
        import subprocess
        import sys

        bin_dir = Path(sys.executable).parent
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        # No engine retries and no trial queued behind a worker, as docs/commands.md tells
        # users to start theirs.
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
               "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
        common = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                  "start_new_session": True}  # a Ctrl-C in the test run does not reach them
        self.procs = [subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
             self.address.rsplit(":", 1)[1], "--no-dashboard"], **common)]
        self.workers = [subprocess.Popen(
            [str(bin_dir / "dask"), "worker", self.address, "--nthreads", "1", "--nworkers",
             "1", "--host", "127.0.0.1", "--no-dashboard"], **common) for _ in range(workers)]
        self.procs += self.workers
        try:
            from distributed import Client

            with Client(self.address, timeout=30) as client:
                client.wait_for_workers(workers, timeout=60)
        except BaseException:
            self.stop()
            raise

    def worker_children(self, nanny: Any) -> list[int]:
        """pids of the worker processes a `dask worker` (nanny) process runs."""
        import psutil

        return [c.pid for c in psutil.Process(nanny.pid).children(recursive=True)]

    def stop(self) -> None:
        """SIGTERM every process and its children by pid; SIGKILL what is left after 10 s."""
        import psutil

        tree = []
        for p in self.procs:
            try:
                parent = psutil.Process(p.pid)
                tree += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _, alive = psutil.wait_procs(tree, timeout=10)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=5)


@pytest.fixture(scope="session")
def dask_cluster():
    """One real two-worker cluster for the whole session (starting one costs seconds)."""
    pytest.importorskip("distributed")
    cluster = DaskCluster(workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


# Executors a sweep test runs on: (name, extra sweep arguments); "cluster" ones need the
# session's real cluster (its address is filled in by executor_args).
EXECUTORS = ["local", "dask-local", "dask-cluster", "dask-cluster-collect"]


@pytest.fixture(params=EXECUTORS)
def executor_args(request: pytest.FixtureRequest) -> list[str]:
    """`lnexp sweep` arguments selecting each executor in turn."""
    name = request.param
    if name == "local":
        return []
    pytest.importorskip("distributed")
    if name == "dask-local":
        return ["--executor", "dask"]
    cluster = request.getfixturevalue("dask_cluster")
    return ["--scheduler", cluster.address, *(["--collect"] if name.endswith("collect") else [])]


# A small default.yaml: the report and export tests need folders, not numbers.
SMALL = ["--set", "data.n_samples=16", "--set", "model.in_features=8",
         "--set", "model.out_features=6"]


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _folder(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real folders written by the CLI, once per session, one of each kind: run (with figures
    and a failing expectation), training run, deep compare, partial compare, a sweep with
    failed trials and an inspect folder (the report and export tests read them)."""
    out = tmp_path_factory.mktemp("report")
    o = ["-o", str(out), "-q"]
    got: dict[str, Path] = {}
    res = _cli("run", str(CONFIGS / "default.yaml"), *SMALL, *o,
               "--expect", "post_norm.per_sample.var.min >= 0.99",
               "--expect", "post_norm.per_feature.var.spread <= 0.01")
    assert res.exit_code == 1, res.output  # the second expectation fails
    got["run"] = _folder(res.stdout)
    res = _cli("run", str(CONFIGS / "batch_size.yaml"), "--set", "train.steps=20",
               "--set", "train.eval_every=10", "--set", "output.figures=false", *o)
    assert res.exit_code == 0, res.output
    got["train"] = _folder(res.stdout)
    res = _cli("compare", "bn", "ln", "none", "--config", str(CONFIGS / "default.yaml"), *SMALL,
               "--set", "model.depth=3", "--set", "output.workers=1", *o)
    assert res.exit_code == 0, res.output
    got["compare"] = _folder(res.stdout)
    res = _cli("compare", "bn", "ln", "--config", str(CONFIGS / "single_sample.yaml"),
               "--set", "output.figures=false", *o)
    assert res.exit_code == 3, res.output
    got["partial"] = _folder(res.stdout)
    res = _cli("sweep", str(CONFIGS / "default.yaml"), *SMALL, "--set", "output.figures=false",
               "--grid", "model.norm=bn,ln", "--grid", "data.n_samples=1,4", "--seeds", "2",
               "-j", "1", *o)
    assert res.exit_code == 3, res.output  # bn on one sample in train mode fails
    got["sweep"] = next((out / "default-sweep").iterdir())
    from tests.test_inspect_inputs import FACTORIES

    (out / "nets.py").write_text(FACTORIES)
    res = _cli("inspect", f"{out / 'nets.py'}:good", "--random", "6,4", "-b", "4", *o)
    assert res.exit_code == 0, res.output
    got["inspect"] = _folder(res.stdout)
    return got


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root, as in CI), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
