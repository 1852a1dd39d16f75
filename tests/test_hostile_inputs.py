"""A hostile corpus of inputs, run as real subprocesses of the installed entry point (issue 11:
bad input and numbers). Each case asserts the exit code, exactly one clear `error:` line on
stderr (none for cases that succeed) and no traceback, an unchanged tree (nothing new in the
working folder, or for runs that must succeed a run folder with metrics.json), and that no
process carrying this test's environment marker is left.

Most cases are config errors that exit in well under a second, so they use `validate` (which
refuses exactly what `run` refuses); a few run for real.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lnexp.config.loading import MAX_CONFIG_BYTES

LNEXP = shutil.which("lnexp", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(LNEXP is None, reason="lnexp entry point not installed")]
MARKER = "LNEXP_TEST_MARKER"


# --------------------------------------------------------------------------- harness

def _marked(marker: str) -> list[int]:
    """Processes whose environment holds `MARKER=marker`."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue  # gone, or not ours to read
    return pids


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _assert_clean_exit(proc_err: str, code: int, expected: int, words: list[str]) -> None:
    assert code == expected, proc_err
    assert "Traceback" not in proc_err, proc_err
    errors = [line for line in proc_err.splitlines() if line.startswith("error: ")]
    if expected == 0:
        assert errors == [], proc_err
        return
    assert len(errors) == 1, proc_err
    for w in words:
        assert w in errors[0], errors[0]


def _assert_no_process_left(marker: str) -> None:
    deadline = time.monotonic() + 5  # a worker the parent just reaped may linger a moment
    while (left := _marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes left behind: {left}"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def lnexp(args: list[str], cwd: Path, timeout: float = 120,
          marker: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `lnexp` with a fresh environment marker; assert nothing is left."""
    marker = marker or uuid.uuid4().hex
    env = {**os.environ, MARKER: marker, "NO_COLOR": "1"}
    proc = subprocess.run([LNEXP, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    _assert_no_process_left(marker)
    return proc


# --------------------------------------------------------------------------- the corpus

@dataclass(frozen=True)
class Case:
    """A config file (text, bytes, or a function making the path), the command and what must
    come out."""

    id: str
    content: str | bytes | Callable[[Path], Path] | None
    words: list[str]
    args: list[str] = field(default_factory=list)
    command: str = "validate"
    code: int = 2
    ok_run: bool = False  # a run that must succeed: a run folder with metrics.json


def _bomb_values(rows: int = 2_000, width: int = 1_000) -> str:
    row = ", ".join(["1.5"] * width)
    return f"data:\n  values: [&r [{row}], " + ", ".join(["*r"] * rows) + "]\n"


def _laughs(key: str = "lol") -> str:
    text = f"{key}:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    return text + "".join(f"  {c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n"
                          for p, c in zip("abcdefghi", "bcdefghij", strict=True))


def _sparse(size: int) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / "big.yaml"
        with p.open("wb") as f:
            f.truncate(size)
        return p
    return make


def _path(relative: str, make: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    def make_path(d: Path) -> Path:
        if make is not None:
            make(d)
        return d / relative
    return make_path


def _loop(d: Path) -> None:
    (d / "loop.yaml").symlink_to(d / "loop.yaml")


def _empty_fifo(d: Path) -> Path:
    os.mkfifo(d / "fifo.yaml")
    return d / "fifo.yaml"


FINITE_KEYS = ["data.loc", "data.scale", "data.df", "model.eps", "model.gain", "train.lr",
               "train.momentum", "train.noise", "train.separation", "limits.max_memory_gb",
               "limits.memory_fraction"]
NON_FINITE = [".inf", "-.inf", ".nan", "1e999"]

CASES = [
    # YAML bombs: refused from the node graph, before any list is built
    Case("alias bomb in data.values", _bomb_values(), ["cfg.yaml:2:", "aliases expand"]),
    Case("billion laughs in an unknown key", _laughs(), ["aliases expand to more than"]),
    Case("billion laughs in expect", _laughs("expect").replace("[x", "[{le: 1}").replace(
        "x]", "{le: 1}]").replace(", x", ", {le: 1}"), ["aliases expand"]),
    Case("billion laughs in the sweep block", _laughs("sweep"), ["aliases expand"]),
    Case("alias bomb in --set data.values", "{}\n",
         ["--set 'data.values=", "aliases expand"],
         ["--set", "data.values=[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], " + ", ".join(
             f"&{c} [" + ", ".join([f"*{p}"] * 10) + "]"
             for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "]"]),
    Case("recursive alias", "data:\n  values: &v [[1], *v]\n", ["cfg.yaml:2:",
                                                               "refers to the collection"]),
    Case("aliases nesting through each other",
         "a0: &a0 " + "[" * 20 + "1" + "]" * 20 + "\n" + "".join(
             f"a{i}: &a{i} " + "[" * 20 + f"*a{i - 1}" + "]" * 20 + "\n" for i in range(1, 5)),
         ["aliases nest more than 32 levels"]),
    # nesting: one line, not a RecursionError
    Case("2000 nested [", "data:\n  values: " + "[" * 2000 + "]" * 2000 + "\n",
         ["cfg.yaml:2:", "nested more than 32 levels"]),
    Case("2000 nested {", "model: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n",
         ["cfg.yaml:1:", "nested more than 32 levels"]),
    Case("block sequences 200 deep",
         "model:\n" + "".join("  " * i + "-\n" for i in range(1, 200)),
         ["nested more than 32 levels"]),
    Case("nesting in --set", "{}\n", ["--set 'model.norm=", "nested more than"],
         ["--set", "model.norm=" + "[" * 5000 + "]" * 5000]),
    # size: a bounded read
    Case("file over 1 MiB", "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1),
         ["larger than 1 MiB"]),
    Case("sparse 4 GiB file", _sparse(4 << 30), ["big.yaml: larger than 1 MiB"]),
    Case("/dev/zero", _path("/dev/zero"), ["/dev/zero: larger than 1 MiB"]),
    Case("FIFO without a writer", _empty_fifo, ["fifo.yaml: the file is empty"]),
    # duplicates at several depths, both lines named
    Case("duplicate top-level key", "seed: 1\nname: a\nseed: 2\n",
         ["cfg.yaml:3: seed: duplicate key (first at line 1)"]),
    Case("duplicate section key", "model:\n  norm: ln\n  eps: 0.1\n  norm: bn\n",
         ["cfg.yaml:4: model.norm: duplicate key (first at line 2)"]),
    Case("duplicate in a flow mapping", "model: {norm: ln, norm: bn}\n",
         ["cfg.yaml:1: model.norm: duplicate key (first at line 1)"]),
    Case("duplicate comparator", "expect:\n  post_norm.global.mean.abs_max: {le: 1, le: 2}\n",
         ["cfg.yaml:2: expect.post_norm.global.mean.abs_max.le: duplicate key"]),
    Case("duplicate section", "model:\n  norm: ln\ndata:\n  n_samples: 4\nmodel:\n  eps: 1\n",
         ["cfg.yaml:5: model: duplicate key (first at line 1)"]),
    Case("duplicate in the sweep block",
         "sweep:\n  grid:\n    seed: [1, 2]\n    seed: [3]\n",
         ["cfg.yaml:4: sweep.grid.seed: duplicate key (first at line 3)"]),
    # non-finite numbers: refused at validation (exit 2, not 70)
    *[Case(f"{key}={value} via --set", "train: {}\n" if key.startswith("train.") else "{}\n",
           [f"(--set {key}): {key}: expected a finite number"], ["--set", f"{key}={value}"])
      for key, value in zip(FINITE_KEYS, NON_FINITE * 3, strict=False)],
    Case(".nan in the file", "data:\n  loc: .nan\n",
         ["cfg.yaml:2: data.loc: expected a finite number, got nan"]),
    Case("1e999 in the file", "model:\n  eps: 1e999\n",
         ["cfg.yaml:2: model.eps: expected a finite number, got inf"]),
    Case("inf bound in expect", "expect:\n  post_norm.global.mean.abs_max: {le: .inf}\n",
         ["cfg.yaml:2:", "expected a finite number"]),
    Case("NaN in data.values", "data:\n  values: [[1, .nan], [2, 3]]\nmodel:\n  linear: false\n",
         ["data.values holds NaN or Inf"]),
    # unicode and very long names, keys, paths
    Case("unicode name", "name: régression-✓\n", ["cfg.yaml:1: name: expected 1-64 letters"]),
    Case("unicode key", "modèle:\n  norm: ln\n", ["cfg.yaml:1: modèle: unknown key"]),
    Case("1,000-character key", "k" * 1_000 + ": 1\n", ["cfg.yaml:1:", "unknown key"]),
    Case("10,000-character key", "k" * 10_000 + ": 1\n", ["cfg.yaml:1: invalid YAML"]),
    Case("10,000-character name", "name: " + "n" * 10_000 + "\n",
         ["cfg.yaml:1: name: expected 1-64 letters", "..."]),
    Case("path of 300 characters", _path("x" * 300 + ".yaml"),
         ["cannot read (File name too long)"]),
    Case("not UTF-8", "name: caf\xe9\n".encode("latin-1"), ["cfg.yaml: cannot read (not UTF-8"]),
    Case("control character", b"seed: 1\nname: a\x07b\n", ["cfg.yaml:2: invalid YAML"]),
    Case("unicode file name, valid", _path("réglage ✓.yaml",
                                           lambda d: (d / "réglage ✓.yaml").write_text("{}\n")),
         [], code=0),
    # paths that are not config files
    Case("a directory", _path("."), ["is a directory"]),
    Case("missing file", _path("missing.yaml"), ["missing.yaml: no such file"]),
    Case("missing folder", _path("nowhere/cfg.yaml"), ["nowhere/cfg.yaml: no such file"]),
    Case("symlink loop", _path("loop.yaml", _loop), ["loop.yaml: cannot read"]),
    # validate = run: refused by both from the config alone, before anything is made
    *[Case(f"{cmd}: {what}", "{}\n", words, [*sets], command=cmd)
      for cmd in ("validate", "run")
      for what, sets, words in [
          ("bn eps 0 in train mode", ["--set", "model.norm=bn", "--set", "model.eps=0"],
           ["cfg.yaml: bn: model.eps: 0 is refused by PyTorch in train mode"]),
          ("layers.* at depth 1", ["--expect", "layers.grad_norm.max <= 1"],
           ["expect.layers.grad_norm.max: layers.* metrics exist only with model.depth > 1"]),
          ("training.* without train", ["--expect", "training.train_loss.max <= 1"],
           ["expect.training.train_loss.max: training.* metrics exist only with a train:"]),
          ("instance on 1 feature", ["--set", "model.norm=instance",
                                     "--set", "model.out_features=1"],
           ["instance: not defined for a layer of 1 feature"]),
      ]],
    # errors blame --set for values from --set, even for cross-key rules
    Case("--set groups then norm", "model:\n  norm: ln\n",
         ["cfg.yaml (--set model.groups): model.groups: ", "3 groups do not divide 50"],
         ["--set", "model.groups=3", "--set", "model.norm=group"]),
    # huge finite activations and degenerate data: figures drawn, metrics.json written
    Case("activations near 1e38", "{}\n", [],
         ["--set", "data.scale=1e37", "--set", "model.linear=false",
          "--set", "model.out_features=100", "--set", "data.n_samples=50"],
         command="run", code=0, ok_run=True),
    Case("one constant row", "data:\n  values: [[3.0e+38, 3.0e+38, 3.0e+38]]\nmodel:\n"
         "  linear: false\n  norm: none\n", [], command="run", code=0, ok_run=True),
    Case("a single value", "data:\n  values: [[5]]\nmodel:\n  linear: false\n", [],
         command="run", code=0, ok_run=True),
]


def _config(case: Case, work: Path) -> Path:
    if callable(case.content):
        return case.content(work)
    p = work / "cfg.yaml"
    if isinstance(case.content, bytes):
        p.write_bytes(case.content)
    else:
        assert case.content is not None
        p.write_text(case.content, encoding="utf-8")
    return p


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, work: Path):
    config = _config(case, work)
    # a relative path where the config sits in the working folder: messages name `cfg.yaml`
    shown = os.path.relpath(config, work) if str(config).startswith(str(work)) else str(config)
    before = _tree(work)
    args = [case.command, shown, *case.args]
    if case.command == "run":
        # one figure process: these cases are about the numbers; the figure pool's shutdown
        # (issue 11, rows 4/5) is tested with the processes
        args += ["-o", "out", "-q", "--set", "output.workers=1"]
    proc = lnexp(args, work)
    _assert_clean_exit(proc.stderr, proc.returncode, case.code, case.words)
    after = _tree(work)
    if case.ok_run:
        run_dir = Path(proc.stdout.strip())
        assert (work / run_dir / "metrics.json").is_file()
        assert (work / run_dir / "figures" / "overview.png").is_file()
        assert all(p.startswith("out") for p in after - before)
    else:
        assert after == before, after - before


def test_no_readable_bit(work: Path):
    p = work / "secret.yaml"
    p.write_text("{}\n")
    p.chmod(0)
    if os.access(p, os.R_OK):
        pytest.skip("running as root: every file is readable")
    proc = lnexp(["validate", "secret.yaml"], work)
    _assert_clean_exit(proc.stderr, proc.returncode, 2, ["secret.yaml: cannot read"])


def test_fifo_with_an_endless_writer_is_cut_at_the_cap(work: Path):
    fifo = work / "fifo.yaml"
    os.mkfifo(fifo)

    def write() -> None:
        try:
            with open(fifo, "wb") as f:
                while True:
                    f.write(b"# " + b"x" * 4094 + b"\n")
        except (BrokenPipeError, OSError):
            pass  # the reader stopped reading: what we want

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = lnexp(["validate", "fifo.yaml"], work, timeout=30)
    writer.join(timeout=10)
    _assert_clean_exit(proc.stderr, proc.returncode, 2, ["fifo.yaml: larger than 1 MiB"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_read_waiting_on_a_silent_writer_stops_on_a_signal(work: Path, sig: int):
    fifo = work / "fifo.yaml"
    os.mkfifo(fifo)
    marker = uuid.uuid4().hex
    holder = os.open(fifo, os.O_RDWR)  # a writer that never writes: the read waits
    try:
        proc = subprocess.Popen([LNEXP, "validate", "fifo.yaml"], cwd=work,
                                env={**os.environ, MARKER: marker, "NO_COLOR": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)  # imports done, blocked in read()
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        os.close(holder)
    _assert_clean_exit(err, proc.returncode, 130, ["interrupted"])
    _assert_no_process_left(marker)


def test_compare_without_config_from_another_folder(work: Path):
    proc = lnexp(["compare", "ln", "-q", "-o", "out", "--set", "output.figures=false"], work)
    _assert_clean_exit(proc.stderr, proc.returncode, 0, [])
    assert (work / proc.stdout.strip() / "comparison.json").is_file()


def test_validate_and_run_print_the_same_refusal(work: Path):
    (work / "cfg.yaml").write_text("model:\n  norm: bn\n  eps: 0\n")
    seen = []
    for command in (["validate"], ["run", "-o", "out"]):
        proc = lnexp([*command[:1], "cfg.yaml", *command[1:]], work)
        _assert_clean_exit(proc.stderr, proc.returncode, 2, ["model.eps: 0 is refused"])
        seen.append([line for line in proc.stderr.splitlines() if line.startswith("error: ")])
    assert seen[0] == seen[1]
    assert not (work / "out").exists()
