"""A/B two checkouts of lnexp: `lnexp run` and `lnexp compare` on configs/default.yaml, each a
fresh subprocess, the two trees taking turns within every round (so drift in the machine's load
hits both alike). Reports the median wall time and the median CPU time of the process tree
(user + system of the command and its reaped children: the figure workers).

    git worktree add /tmp/base <commit>        # the tree to compare against
    python benchmarks/ab_trees.py /tmp/base . --reps 7

Both trees run with this interpreter and PYTHONPATH set to the tree, so the same venv serves
both (each tree's own `lnexp` package is imported).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "run": ["run", "configs/default.yaml", "-q", "-o", "{out}"],
    "compare": ["compare", "-q", "-o", "{out}", "--config", "configs/default.yaml"],
}


def once(tree: Path, argv: list[str], out: str) -> tuple[float, float]:
    """(wall s, CPU s of the process tree) of one command run from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lnexp", *(a.format(out=out) for a in argv)],
                            cwd=tree, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{tree}: lnexp {' '.join(argv)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="first tree (e.g. the base commit)")
    ap.add_argument("b", type=Path, help="second tree (e.g. this checkout)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", choices=sorted(COMMANDS), action="append")
    args = ap.parse_args()
    names = args.only or list(COMMANDS)
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as out:
        for rep in range(args.reps + 1):  # round 0 warms the caches and is dropped
            for label, tree in trees.items():
                for name in names:
                    result = once(tree, COMMANDS[name], out)
                    if rep:
                        samples.setdefault((name, label), []).append(result)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for name in names:
        med = {label: (statistics.median(w for w, _ in samples[(name, label)]),
                       statistics.median(c for _, c in samples[(name, label)]))
               for label in trees}
        print(f"{name:8} A {med['A'][0]:.3f} s wall, {med['A'][1]:.3f} s CPU | "
              f"B {med['B'][0]:.3f} s wall, {med['B'][1]:.3f} s CPU | "
              f"B/A wall {med['B'][0] / med['A'][0]:.3f}")


if __name__ == "__main__":
    main()
