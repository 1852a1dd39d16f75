"""Benchmark lnexp against the tutorial's script, in one invocation, interleaved.

Every command runs as a fresh subprocess: one warm-up round, then `--reps` rounds in which
the commands take turns (so drift in machine load hits all of them alike). Wall time and
peak RSS (ru_maxrss of the process, from wait4) are reported as medians; ratios are taken
between medians of the same invocation.

    python benchmarks/bench.py                 # ~1 minute
    python benchmarks/bench.py --reps 9 --out results.json
    python benchmarks/bench.py --large         # streaming-stats throughput vs torch.var_mean
    python benchmarks/bench.py --only sweep    # 100, 1,000, 2,000 tiny sweep trials
    python benchmarks/bench.py --only listing  # `lnexp runs` over 10,000 run folders
    python benchmarks/bench.py --only log_every  # train.log_every's cost (target <= 10 %)

Peak RSS is the main process's (ru_maxrss, as /usr/bin/time reports it). lnexp renders figures
in worker processes whose memory that number leaves out, so one more, untimed round samples
the whole process tree every 20 ms and reports its peak summed PSS (proportional set size:
shared pages are split between the processes that share them, so nothing is counted twice).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LNEXP = [PY, "-m", "lnexp"]

# (target name, numerator, denominator, limit, what)
TARGETS = [
    ("help_vs_import_floor", "lnexp --help", "import torch+matplotlib", 0.15, "wall"),
    ("run_vs_tutorial", "lnexp run default", "tutorial script", 1.0, "wall"),
    ("run_rss_vs_tutorial", "lnexp run default", "tutorial script", 1.1, "rss"),
    ("run_tree_pss_vs_tutorial", "lnexp run default", "tutorial script", 1.1, "pss"),
    ("compare6_vs_tutorial", "lnexp compare (6 norms)", "tutorial script", 2.0, "wall"),
]


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [PY, "-c", "pass"],
        "import torch+matplotlib": [PY, "-c", "import torch, matplotlib.pyplot"],
        "tutorial script": [PY, str(ROOT / "benchmarks" / "tutorial.py"),
                            str(out / "tutorial.png")],
        "lnexp --help": [*LNEXP, "--help"],
        "lnexp run default": [*LNEXP, "run", str(ROOT / "configs" / "default.yaml"), "-q",
                              "-o", str(out)],
        "lnexp compare (6 norms)": [*LNEXP, "compare", "-q", "-o", str(out), "--config",
                                    str(ROOT / "configs" / "default.yaml")],
    }


def measure(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one subprocess."""
    env = {**os.environ, "NO_COLOR": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n"
                         f"{proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss * 1024  # Linux reports KiB


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def tree_pss(argv: list[str]) -> float:
    """Peak summed PSS (MiB) of a command's process tree, sampled every 20 ms (Linux)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "NO_COLOR": "1"}, cwd=ROOT)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(_pss_kib(p) for p in _tree(proc.pid)))
        time.sleep(0.02)
    return peak / 1024


def run_suite(reps: int) -> dict[str, dict[str, float]]:
    out = Path(tempfile.mkdtemp(prefix="lnexp-bench-"))
    try:
        cmds = commands(out)
        for argv in cmds.values():  # warm-up: page cache, font cache, .pyc files
            measure(argv)
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in cmds}
        for rep in range(reps):
            for name, argv in cmds.items():
                samples[name].append(measure(argv))
            print(f"  round {rep + 1}/{reps} done", file=sys.stderr)
        pss = ({name: tree_pss(argv) for name, argv in cmds.items()}
               if os.path.exists("/proc/self/smaps_rollup") else {})
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {name: {"wall_s": statistics.median(w for w, _ in s),
                   "wall_min_s": min(w for w, _ in s),
                   "peak_rss_mib": statistics.median(r for _, r in s) / 2**20,
                   "tree_pss_mib": pss.get(name),
                   "n": len(s)} for name, s in samples.items()}


def ratios(res: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    rows = []
    for key, num, den, limit, kind in TARGETS:
        field = {"wall": "wall_s", "rss": "peak_rss_mib", "pss": "tree_pss_mib"}[kind]
        if res[num][field] is None or res[den][field] is None:
            continue
        value = res[num][field] / res[den][field]
        rows.append({"target": key, "ratio": round(value, 3), "limit": limit,
                     "met": value <= limit, "of": f"{num} / {den} ({kind})"})
    return rows


def large(gib: float) -> dict[str, object]:
    """Stats throughput on one in-memory float32 tensor: lnexp's chunked float64 stats vs
    torch.var_mean (per-feature and per-sample) on the same tensor."""
    import torch

    from lnexp import stats

    cols = 1024
    rows = int(gib * 2**30 / 4 / cols)
    x = torch.randn(rows, cols)
    nbytes = x.numel() * 4

    def best(fn, reps: int = 3) -> float:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_torch = best(lambda: (torch.var_mean(x, dim=0, correction=0),
                            torch.var_mean(x, dim=1, correction=0)))
    t_lnexp = best(lambda: stats.StreamingStats.of(x))
    return {"shape": [rows, cols], "gib": nbytes / 2**30,
            "torch_var_mean_gb_s": nbytes / t_torch / 1e9,
            "lnexp_gb_s": nbytes / t_lnexp / 1e9,
            "ratio": (t_torch / t_lnexp), "limit": 0.5, "met": t_torch / t_lnexp >= 0.5}


TINY = ("name: tiny\ndata:\n  n_samples: 8\nmodel:\n  in_features: 6\n  out_features: 4\n"
        "output:\n  figures: false\n")
SWEEP_SIZES = (100, 1000, 2000)


def sweep_scale(sizes: tuple[int, ...] = SWEEP_SIZES, jobs: int = 2,
                env: dict[str, str] | None = None) -> dict[str, object]:
    """Tiny sweeps of growing size on `jobs` local workers: wall time against the trials' own
    CPU time (summed from sweep.json) divided by the workers. A 2-trial sweep measures the
    fixed cost (process start, imports, worker start); `net` is what remains per trial."""
    out = Path(tempfile.mkdtemp(prefix="lnexp-bench-sweep-"))
    try:
        (out / "tiny.yaml").write_text(TINY)

        def one(n: int) -> dict[str, float]:
            argv = [*LNEXP, "sweep", str(out / "tiny.yaml"), "--grid", f"seed=0:{n}", "-j",
                    str(jobs), "-q", "--no-figure", "-o", str(out / str(n))]
            t0 = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "NO_COLOR": "1", **(env or {})})
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"sweep of {n} failed: {proc.stderr[-2000:]}")
            doc = json.loads((Path(proc.stdout.strip()) / "sweep.json").read_text())
            cpu = sum(t.get("cpu_seconds") or 0.0 for t in doc["trials"])
            return {"wall_s": wall, "cpu_s": cpu}

        one(2)  # warm-up: page cache, .pyc files
        fixed = min(one(2)["wall_s"] for _ in range(2))
        rows = []
        for n in sizes:
            r = one(n)
            ideal = r["cpu_s"] / jobs
            net = r["wall_s"] - fixed
            rows.append({"trials": n, "wall_s": r["wall_s"], "per_trial_ms": r["wall_s"] / n * 1e3,
                         "net_per_trial_ms": net / n * 1e3, "cpu_s": r["cpu_s"],
                         "cpu_over_workers_s": ideal, "ratio": r["wall_s"] / ideal if ideal
                         else None, "net_ratio": net / ideal if ideal else None})
            print(f"  sweep of {n} done ({r['wall_s']:.1f} s)", file=sys.stderr)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    flat = rows[-1]["net_per_trial_ms"] / rows[0]["net_per_trial_ms"]
    return {"jobs": jobs, "fixed_s": fixed, "rows": rows, "flatness": flat,
            "flat_met": flat <= 1.2,
            "total_met": all(r["net_ratio"] is not None and r["net_ratio"] <= 1.2
                             for r in rows)}


def listing(n: int = 10_000) -> dict[str, object]:
    """`lnexp runs` over n synthetic run folders (copies of one real tiny run): with run.json
    carrying the listing fields (today), and with them stripped (folders from before, which
    make listing parse metrics.json)."""
    out = Path(tempfile.mkdtemp(prefix="lnexp-bench-runs-"))
    try:
        (out / "tiny.yaml").write_text(TINY)
        proc = subprocess.run([*LNEXP, "run", str(out / "tiny.yaml"), "-q", "-o",
                               str(out / "seed")], capture_output=True, text=True, cwd=ROOT,
                              check=True)
        src = Path(proc.stdout.strip())
        info = json.loads((src / "run.json").read_text())
        metrics = (src / "metrics.json").read_text()
        old = {k: v for k, v in info.items() if k not in ("name", "norm", "shape", "metrics")}
        result: dict[str, object] = {"runs": n, "metrics_json_bytes": len(metrics)}
        for label, doc in (("run.json listing fields", info),
                           ("before: metrics.json parsed", old)):
            root = out / label.split(":")[0].replace(" ", "_")
            for i in range(n):
                d = root / "tiny" / f"20260101-{i // 60 % 60:02d}{i % 60:02d}00-{i:06x}"
                d.mkdir(parents=True)
                (d / "run.json").write_text(json.dumps({**doc, "started":
                                                        f"2026-01-01T00:{i % 60:02d}:00"}))
                (d / "metrics.json").write_text(metrics)
            subprocess.run(["sync"], check=False)
            cmd = [*LNEXP, "runs", "-o", str(root), "--json", "-n", "50"]
            measure(cmd)  # warm the page cache
            walls = sorted(measure(cmd)[0] for _ in range(3))
            code = ("import sys, time; from pathlib import Path; from lnexp import history; "
                    "t = time.perf_counter(); r = history.scan(Path(sys.argv[1])); "
                    "print(time.perf_counter() - t, len(r))")
            scans = sorted(float(subprocess.run([PY, "-c", code, str(root)], capture_output=True,
                                                text=True, check=True).stdout.split()[0])
                           for _ in range(3))
            result[label] = {"command_wall_s": walls[1], "scan_s": scans[1]}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    now = result["run.json listing fields"]
    result["met"] = now["command_wall_s"] <= 0.5  # type: ignore[index]
    return result


# train.log_every: the same training with and without diagnostics every 50 steps, one
# training task each (cut down from the shipped configs; each case a few seconds).
LOG_EVERY = 50
LOG_EVERY_CASES = {
    "charlm": ("charlm", ["train.steps=300", "train.n_train=4000", "train.eval_every=300",
                          "output.figures=false"]),
    "transformer (retrieve)": ("warmup", ["model.placement=pre_residual", "train.steps=300",
                                          "train.eval_every=300"]),
    "mlp (clusters)": ("tutorial", ["model.depth=8", "model.activation=relu",
                                    "train.steps=1000", "train.eval_every=1000",
                                    "output.figures=false"]),
    "conv (digits)": ("digits_batch", ["train.epochs=null", "train.steps=300",
                                       "train.batch_size=32", "train.eval_every=300"]),
}


def _train_seconds(config: str, sets: list[str], log_every: int | None) -> float:
    """CPU seconds of this process from training step 1 to the last step (read in the
    progress callback): the training loop alone, without the snapshot, the step-0 evaluation
    or startup. CPU time, not wall time, so that other jobs on a shared machine do not count
    (training runs on one torch thread)."""
    import lnexp
    from lnexp import experiment

    cfg = lnexp.load_config(config, *sets, f"train.log_every={log_every or 'null'}")
    marks: dict[int, float] = {}
    experiment.run(cfg, progress=lambda done, total, note: marks.setdefault(
        done, time.process_time()))
    return marks[max(marks)] - marks[1]


def log_every_cost(reps: int = 3) -> list[dict[str, object]]:
    """Per case: the median training time without and with train.log_every = LOG_EVERY,
    interleaved (off, on, off, on, ...) after one warm-up of each."""
    rows = []
    for name, (config, sets) in LOG_EVERY_CASES.items():
        for every in (None, LOG_EVERY):  # warm-up
            _train_seconds(config, sets, every)
        off, on = [], []
        for _ in range(reps):
            off.append(_train_seconds(config, sets, None))
            on.append(_train_seconds(config, sets, LOG_EVERY))
        a, b = statistics.median(off), statistics.median(on)
        rows.append({"case": name, "config": config, "set": sets, "reps": reps,
                     "off_s": round(a, 3), "on_s": round(b, 3),
                     "overhead": round(b / a - 1, 4), "limit": 0.10,
                     "met": b / a - 1 <= 0.10})
    return rows


def print_log_every(rows: list[dict[str, object]]) -> None:
    print(f"train.log_every={LOG_EVERY}: training-loop CPU time without / with diagnostics "
          f"(median of {rows[0]['reps'] if rows else 0}, interleaved)")
    for r in rows:
        print(f"  {r['case']:24s} {r['off_s']:8.3f} s {r['on_s']:8.3f} s  "
              f"{100 * float(r['overhead']):+6.1f} %  (target <= +10 %: "  # type: ignore[arg-type]
              f"{'met' if r['met'] else 'MISSED'})")


def print_sweep(sw: dict[str, object]) -> None:
    print(f"sweep scale: tiny trials on {sw['jobs']} local workers; fixed cost (a 2-trial "
          f"sweep) {sw['fixed_s']:.2f} s")
    print(f"{'trials':>7s} {'wall s':>8s} {'ms/trial':>9s} {'net ms/trial':>13s} "
          f"{'trial CPU s':>12s} {'CPU/workers s':>14s} {'wall/ideal':>11s} {'net/ideal':>10s}")
    for r in sw["rows"]:  # type: ignore[attr-defined]
        print(f"{r['trials']:7d} {r['wall_s']:8.2f} {r['per_trial_ms']:9.2f} "
              f"{r['net_per_trial_ms']:13.2f} {r['cpu_s']:12.2f} {r['cpu_over_workers_s']:14.2f} "
              f"{r['ratio']:11.2f} {r['net_ratio']:10.2f}")
    print(f"net per trial, largest / smallest sweep: {sw['flatness']:.2f} (target <= 1.2: "
          f"{'met' if sw['flat_met'] else 'MISSED'}); net wall / (CPU / workers) <= 1.2 at "
          f"every size: {'met' if sw['total_met'] else 'MISSED'}")


def print_listing(ls: dict[str, object]) -> None:
    print(f"listing {ls['runs']} runs (`lnexp runs --json -n 50`, median of 3, warm cache):")
    for label in ("run.json listing fields", "before: metrics.json parsed"):
        r = ls[label]
        print(f"  {label:30s} command {r['command_wall_s']:.3f} s, history.scan "  # type: ignore[index]
              f"{r['scan_s']:.3f} s")  # type: ignore[index]
    print(f"  target: command <= 0.5 s: {'met' if ls['met'] else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="measured rounds (default 5)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench.json")
    ap.add_argument("--large", action="store_true", help="only the streaming-stats benchmark")
    ap.add_argument("--gib", type=float, default=1.0, help="tensor size for --large")
    ap.add_argument("--only", choices=["commands", "sweep", "listing", "log_every"],
                    action="append", help="run only these parts (repeatable; default: all)")
    args = ap.parse_args()
    parts = set(args.only or ["commands", "sweep", "listing", "log_every"])

    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_before": os.getloadavg()[0]}
    # the ratios are what to read; the load says how far the absolute times are from a quiet
    # machine's (another job's load during the run is the common reason a ratio moves)
    print(f"load average before: {info['load_before']:.2f} on {info['cpus']} CPUs",
          file=sys.stderr)
    if args.large:
        doc = {"machine": info, "large": large(args.gib)}
        lg = doc["large"]
        print(f"stats on {lg['shape'][0]}x{lg['shape'][1]} float32 ({lg['gib']:.2f} GiB): "
              f"torch.var_mean {lg['torch_var_mean_gb_s']:.2f} GB/s, lnexp "
              f"{lg['lnexp_gb_s']:.2f} GB/s, ratio {lg['ratio']:.2f} (target >= 0.5: "
              f"{'met' if lg['met'] else 'MISSED'})")
    else:
        doc = {"machine": info, "reps": args.reps}
    if not args.large and "commands" in parts:
        res = run_suite(args.reps)
        doc.update(commands=res, ratios=ratios(res))
        print(f"{'command':28s} {'median wall s':>14s} {'min wall s':>11s} {'peak RSS MiB':>13s}"
              f" {'tree PSS MiB':>13s}")
        for name, r in res.items():
            pss = f"{r['tree_pss_mib']:13.1f}" if r["tree_pss_mib"] is not None else ""
            print(f"{name:28s} {r['wall_s']:14.3f} {r['wall_min_s']:11.3f} "
                  f"{r['peak_rss_mib']:13.1f} {pss}")
        print()
        for row in doc["ratios"]:
            print(f"{row['target']:25s} {row['ratio']:6.3f}  (target <= {row['limit']}: "
                  f"{'met' if row['met'] else 'MISSED'})  {row['of']}")
    if not args.large and "sweep" in parts:
        doc["sweep"] = sweep_scale()
        print()
        print_sweep(doc["sweep"])
    if not args.large and "listing" in parts:
        doc["listing"] = listing()
        print()
        print_listing(doc["listing"])
    if not args.large and "log_every" in parts:
        doc["log_every"] = log_every_cost()
        print()
        print_log_every(doc["log_every"])
    info["load_after"] = os.getloadavg()[0]
    print(f"\nload average before / after: {info['load_before']:.2f} / {info['load_after']:.2f}"
          f" on {info['cpus']} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
