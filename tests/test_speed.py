"""`lnexp speed`: its timings against a plain torch.utils.benchmark script (a ratio in one
process), what it says ran, its folder, figure, expectations and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lnexp import speed, speed_files

SHAPE = (8, 64, 256)  # 128k values: a pass is real work, the test stays short


def _plain(m, x, g, pass_: str, min_run_time: float) -> tuple[float, float]:
    """What a user would write: torch.utils.benchmark on the module; (median, fastest block)
    in seconds."""
    import torch
    from torch.utils import benchmark

    def step() -> None:
        x.grad = None
        m(x).backward(g)

    stmt = "m(x)" if pass_ == "forward" else "step()"
    for _ in range(2):
        m(x) if pass_ == "forward" else step()
    timer = benchmark.Timer(stmt=stmt, globals={"m": m, "x": x, "step": step},
                            num_threads=torch.get_num_threads())
    meas = timer.blocked_autorange(min_run_time=min_run_time)
    return float(meas.median), float(min(meas.times))


def _fastest_ratio(pass_: str, rounds: int = 7) -> tuple[float, float, list, list]:
    """(lnexp / plain for the fastest block, for the smallest median) over `rounds` turns."""
    import torch

    opts = speed.SpeedOptions(min_run_time=0.03)
    m, _ = speed.build("ln", SHAPE, "float32", "cpu")
    plain_m = torch.nn.LayerNorm(SHAPE[-1])
    x = torch.randn(SHAPE, requires_grad=True)
    g = torch.randn_like(x)
    ours, plain = [], []
    for _ in range(rounds):
        t = speed.time_passes(m, x, g, opts)[pass_]
        ours.append((t["median_ms"] / 1e3, t["min_ms"] / 1e3))
        plain.append(_plain(plain_m, x, g, pass_, 0.03))
    return (min(o[1] for o in ours) / min(p[1] for p in plain),
            min(o[0] for o in ours) / min(p[0] for p in plain), ours, plain)


@pytest.mark.slow
@pytest.mark.parametrize("pass_", speed.PASSES)
def test_times_match_a_plain_benchmark_script(pass_: str) -> None:
    """lnexp's time within 10 % of a plain torch.utils.benchmark script's, both measured here
    in turns, one thread each. On a quiet machine the medians agree. On this shared 2-core
    one (load average 9-12 while this was written) one median swung 10x between rounds, so
    the test compares what load inflates least, the fastest block of seven rounds each
    (lnexp reports it as min_ms), and takes the best of three attempts: a burst of load
    during one attempt is the machine's, a systematic overhead shows in all three. The
    medians are checked as well when the load average is below 0.5."""
    import os

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        attempts = []
        for _ in range(3):
            attempts.append(_fastest_ratio(pass_))
            if 0.9 <= attempts[-1][0] <= 1.1:
                break
    finally:
        torch.set_num_threads(threads)
    fastest, median, ours, plain = attempts[-1]
    assert 0.9 <= fastest <= 1.1, ([a[0] for a in attempts], ours, plain)
    if os.getloadavg()[0] < 0.5:
        assert 0.9 <= median <= 1.1, (median, ours, plain)


def test_implementation_is_read_from_the_profiler() -> None:
    import torch

    x = torch.randn(4, 8, 16, requires_grad=True)
    got = {n: speed.implementation(speed.build(n, (4, 8, 16), "float32", "cpu")[0], x)[1]
           for n in ("ln", "rms", "none", "group")}
    assert got["ln"] == "fused native_layer_norm"
    assert got["rms"].startswith("composite: ") and "pow" in got["rms"]  # CPU: a chain of ops
    assert got["none"].startswith("identity")
    assert got["group"] == "fused native_group_norm + copy_"  # (N,T,C) -> contiguous (N,C,T)


def test_json_folder_figure_and_expectations(invoke, tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "out"
    r = invoke("speed", "--shape", "4x8x16", "--shape", "8x16", "--norm", "ln", "--norm",
               "rms", "--no-compile", "--min-time", "0.01", "--json", "-o", str(out),
               "--expect", "ln/ln ~= 1", "--expect", "rms/ln eager forward_backward < 1e6")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kind"] == "speed" and doc["schema_version"] == 1
    assert [(c["shape"], c["norm"]) for c in doc["cases"]] == [
        ([4, 8, 16], "ln"), ([4, 8, 16], "rms"), ([8, 16], "ln"), ([8, 16], "rms")]
    for c in doc["cases"]:
        assert set(c["timings"]) == {"eager"} and c["compile_s"] is None
        fwd = c["timings"]["eager"]["forward"]
        assert fwd["median_ms"] > 0 and fwd["iqr_ms"] >= 0 and fwd["runs"] >= 1
        n = 4 * 8 * 16 if len(c["shape"]) == 3 else 8 * 16
        assert c["bytes"]["forward"] == 2 * 4 * n + 4 * 16 * 2 ** (c["norm"] == "ln") or \
            c["bytes"]["forward"] == 2 * 4 * n + 4 * c["shape"][-1] * (1 + (c["norm"] == "ln"))
    assert [e["passed"] for e in doc["expectations"]] == [True, True]
    assert len(doc["expectations"][0]["per_case"]) == 2  # checked at both shapes
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent == out / "speed"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert json.loads((run_dir / "speed.json").read_text())["cases"] == doc["cases"]
    png = imread(run_dir / "figures" / "speed.png")
    assert png.shape[1] > 1.8 * png.shape[0]  # two panels side by side


def test_failed_expectation_exits_1_and_table(invoke, tmp_path: Path) -> None:
    r = invoke("speed", "--shape", "4x16", "--norm", "ln", "--norm", "none", "--no-compile",
               "--min-time", "0.01", "--no-figures", "--expect", "ln/ln > 1",
               env={"COLUMNS": "200"})
    assert r.exit_code == 1, r.output
    assert "1 expectation(s) failed: ln/ln > 1" in r.stderr
    assert "fused native_layer_norm" in r.stdout and "identity" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--shape", "3x"], "--shape '3x'"),
    (["--shape", "2x3x4x5x6"], "positive sizes"),
    (["--dtype", "float8"], "--dtype 'float8'"),
    (["--norm", "nope"], "unknown norm 'nope'"),
    (["--layout", "video"], "--layout 'video'"),
    (["--expect", "rms ln <= 2"], "--expect 'rms ln <= 2'"),
    (["--expect", "rms/ln fast <= 2"], "'fast' is not one of"),
])
def test_bad_input_is_one_line_and_exit_2(invoke, args: list[str], message: str) -> None:
    r = invoke("speed", "--no-compile", *args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_expectation_parsing() -> None:
    e = speed_files.parse_expectation("dyt/ln compiled forward_backward <= 3")
    assert (e["ratio"], e["mode"], e["pass"], e["op"], e["bound"]) == \
        ("dyt/ln", "compiled", "forward_backward", "le", 3.0)
    # a user norm's path holds '/': the split is the one that names two measured norms
    assert speed_files._split("my/n.py:A/ln", {"my/n.py:A", "ln"}) == ("my/n.py:A", "ln")


@pytest.mark.slow
def test_compiled_numbers_and_compile_time(invoke, tmp_path: Path) -> None:
    r = invoke("speed", "--shape", "4x8x16", "--norm", "ln", "--norm", "rms", "--min-time",
               "0.01", "--json", "--no-figures", "--expect", "rms/ln compiled <= 1e6")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for c in doc["cases"]:
        assert c["compile_error"] is None and c["compile_s"] > 0
        assert c["timings"]["compiled"]["forward_backward"]["median_ms"] > 0
    assert doc["expectations"][0]["passed"]


def test_busy_machine_note_and_the_figure_reads_every_norm(tmp_path: Path) -> None:
    """The note appears only when the timing threads have no free core; the one-panel figure
    keeps the longest norm name and its title inside the image and goes log when the times
    span orders of magnitude (the first draw cut 'batch_renorm' and the title)."""
    from matplotlib.image import imread

    from lnexp.cli.speed import _busy
    from lnexp.speed_figure import build, draw

    assert _busy({"load_average": [2.1, 2, 2], "cpus": 2, "threads": 2}).startswith("note:")
    assert _busy({"load_average": [0.2, 0, 0], "cpus": 2, "threads": 2}) is None
    assert _busy({"load_average": [3.0, 3, 3], "cpus": 2, "threads": 1}) is None
    timing = {"median_ms": 1.0, "iqr_ms": 0.1, "p25_ms": 0.95, "p75_ms": 1.05}
    cases = [{"shape": [4, 8, 16], "dtype": "float32", "norm": n, "error": None,
              "compile_error": None,
              "timings": {"eager": {"forward": {**timing, "median_ms": ms}}}}
             for n, ms in (("none", 0.002), ("ln", 1.0), ("batch_renorm", 30.0))]
    env = {"device": "cpu", "threads": 2, "torch": "2.x", "load_average": [1.5, 1, 1]}
    draw({"cases": cases, "environment": env}, tmp_path / "s.png")
    fig = build({"cases": cases, "environment": env})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    texts = [*ax.get_yticklabels(), fig._suptitle]
    assert "batch_renorm" in [t.get_text() for t in ax.get_yticklabels()]
    for t in texts:
        ext = t.get_window_extent(renderer)
        assert ext.x0 >= box.x0 and ext.x1 <= box.x1, t.get_text()
    assert imread(tmp_path / "s.png").shape[1] >= 800


def _doc(compiled: bool) -> dict:
    """A speed document of three norms at a sequence and an image shape, with the
    implementation texts they really report (the longest ones; ln on an image runs GroupNorm's
    kernel)."""
    timing = {"median_ms": 1.234, "iqr_ms": 0.1}
    impl = {"batch_renorm": "composite: var_mean, sub, div, mul, add, mul, add",
            "frn": "composite: pow, sum, mul, mul, add, maximum", "ln": "fused native_layer_norm"}
    cases = [{"shape": list(shape), "dtype": "float32", "norm": n, "error": None,
              "implementation": "fused native_group_norm" if n == "ln" and len(shape) == 4
              else impl[n],
              "compile_error": None, "compile_s": 12.3 if compiled else None,
              "timings": {"eager": {"forward": {**timing, "gb_per_s": 9.9},
                                    "forward_backward": timing},
                          **({"compiled": {"forward": timing, "forward_backward": timing}}
                             if compiled else {})}}
             for shape in ((16, 128, 512), (16, 64, 32, 32))
             for n in ("ln", "batch_renorm", "frn")]
    env = {"device": "cpu", "threads": 2, "torch": "2.13.0+cpu", "load_average": [0.5, 0, 0]}
    return {"cases": cases, "environment": env, "options": {"compile": compiled}}


@pytest.mark.parametrize("compiled", [True, False])
def test_tables_fit_120_columns_one_line_per_case(compiled: bool) -> None:
    """The implementation column wrapped every timing row onto three lines at 120 columns; it
    is a table of its own now, one row per (norm, dtype, implementation), with the shapes it
    applies to when that is not all of them. --no-compile drops the compiled columns."""
    from rich.console import Console

    from lnexp.speed_table import speed_tables

    console = Console(width=120, record=True, color_system=None)
    for part in speed_tables(_doc(compiled)):
        console.print(part)
    text = console.export_text()
    times, impl = text.split("Eager implementation, read from the profiler")
    rows = [ln for ln in times.splitlines() if ln.startswith("  16×")]
    assert len(rows) == 6 and all("1.23" in r for r in rows)  # one line per case
    header = next(ln for ln in times.splitlines() if ln.strip().startswith("shape"))
    assert ("fwd c" in header and "comp s" in header) == compiled
    impl_rows = [ln.rstrip().split(maxsplit=3) for ln in impl.splitlines()
                 if ln.strip().split(" ")[0] in ("ln", "batch_renorm", "frn")]
    assert [(r[0], r[2]) for r in impl_rows] == [
        ("ln", "16×128×512"), ("batch_renorm", "all"), ("frn", "all"), ("ln", "16×64×32×32")]
    assert impl_rows[1][3] == "composite: var_mean, sub, div, mul, add, mul, add"
    assert impl_rows[3][3] == "fused native_group_norm"
    assert max(len(ln) for ln in text.splitlines()) <= 120


@pytest.mark.slow
def test_the_installed_command_prints_no_profiler_status_lines(tmp_path: Path) -> None:
    """libkineto (torch 2.13) writes 'USDT:... profiler_start' and '... profiler_stop' to
    file descriptor 2 on every profile, two lines per norm in the user's terminal; they are
    dropped, anything else written there comes back."""
    lnexp = str(Path(sys.executable).with_name("lnexp"))
    r = subprocess.run([lnexp, "speed", "--shape", "4x16", "--norm", "ln", "--norm", "rms",
                        "--no-compile", "--min-time", "0.01", "--no-figures", "-o",
                        str(tmp_path)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    assert "profiler_start" not in r.stderr and "USDT:" not in r.stderr, r.stderr
    assert "composite: pow, sum, mul, mul" in r.stdout


def test_native_stderr_comes_back_without_kineto_lines(capfd) -> None:
    with speed._kineto_lines_dropped():
        os.write(2, b"USDT:2026-12-03 23:02:54 23251:23251 SyncActivityProfilerHandler.cpp:52]"
                    b" profiler_start\nSTAGE:2026-12-03 23:03:07 23272:23272 Sync.cpp:51] "
                    b"Completed Stage: Warm Up\na real warning\n")
    assert capfd.readouterr().err == "a real warning\n"
