"""Result folders edited by hand or by someone hostile (issue 26): every file of a run, compare,
sweep and inspect folder is mutated (types, depth, size, encoding, symlinks, FIFOs, truncation)
and the commands that read folders back run on it: runs, runs show, check, report (HTML and
--markdown), export mlflow and sweep --resume.

Each case asserts: no exit 70 and no traceback (exit 70 means a bug in lnexp), `lnexp runs`
lists (exit 0, the folder skipped with a warning at worst), nothing outside the case's output
folder changed (a sibling "canary" folder, which symlinks and run_dir values point at, is
snapshotted), and no hang (an alarm turns a blocked read into a failure). In-process (typer's
CliRunner) for speed; a few real subprocesses are marked slow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lnexp.cli import app

TINY = ("name: tiny\ndata:\n  n_samples: 8\nmodel:\n  in_features: 6\n  out_features: 4\n"
        "output:\n  figures: false\n")
TRAIN = ["--set", "train.steps=3", "--set", "train.n_train=16", "--set", "train.n_heldout=8",
         "--set", "train.batch_size=8", "--set", "train.eval_every=1", "--set", "model.depth=2"]
MODEL = ("import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Linear(4, 4), "
         "torch.nn.LayerNorm(4))\n")
HANG_S = 20  # one command on a tiny folder takes well under a second


class Hang(BaseException):
    """A command still running after HANG_S: a read waiting forever (BaseException, so the
    CLI's error handling cannot turn it into an exit code)."""


def _cli(*args: str) -> object:
    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"lnexp {' '.join(args)} ran past {HANG_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_S)
    try:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _ok(result: object, *cmd: str) -> None:
    code, out = result.exit_code, result.output  # type: ignore[attr-defined]
    assert code != 70 and "Traceback" not in out, f"lnexp {' '.join(cmd)}: exit {code}\n{out}"
    assert code in (0, 1, 2, 3), f"lnexp {' '.join(cmd)}: exit {code}\n{out}"


# --------------------------------------------------------------------------- pristine folders

@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One run (with training: history.csv), compare, sweep (2 trials) and inspect folder."""
    base = tmp_path_factory.mktemp("pristine")
    cfg = base / "tiny.yaml"
    cfg.write_text(TINY)
    (base / "tinymodel.py").write_text(MODEL)
    out = base / "out"
    for argv in (["run", str(cfg), "-q", *TRAIN],
                 ["compare", "ln", "bn", "--config", str(cfg), "-q"],
                 ["sweep", str(cfg), "--grid", "model.norm=ln,bn", "--seeds", "1", "-j", "1"],
                 ["inspect", f"{base / 'tinymodel.py'}:build", "--random", "8,4",
                  "--no-figures"]):
        res = CliRunner().invoke(app, [*argv, "-o", str(out)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    found = {p.parent.parent.name: p.parent for p in out.glob("*/*/run.json")}
    return {"run": found["tiny"], "compare": found["tiny-compare"],
            "sweep": found["tiny-sweep"], "inspect": found["inspect-tinymodel"]}


# --------------------------------------------------------------------------- mutations

def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink()
            else f"{st.st_mode}")
    return out


def _rewrite_json(path: Path, change: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    make(path)


CANARY = "../../../canary/secret.txt"  # from a file in OUT/<name>/<id>/ (or one level deeper)
STRUCTURAL: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
    "not-utf8": lambda p: p.write_bytes(b"\xff\xfe{\x00\x80" + p.read_bytes()[:50]),
    "control-chars": lambda p: p.write_bytes(p.read_bytes().replace(b'"', b'"\x1b[2J\r', 3)),
    "deep-list": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    "deep-object": lambda p: p.write_text('{"kind": ' * 100_000 + "1" + "}" * 100_000),
    "huge-int": lambda p: p.write_text('{"kind": "run", "status": "completed", "pid": '
                                       + "9" * 5000 + "}"),
    "sparse-300MB": lambda p: os.truncate(p, 300 << 20),
    "fifo": lambda p: _replace(p, os.mkfifo),
    "dev-zero": lambda p: _replace(p, lambda q: q.symlink_to("/dev/zero")),
    "outside-link": lambda p: _replace(p, lambda q: q.symlink_to(
        (p.parent / CANARY).resolve())),
    "folder": lambda p: _replace(p, lambda q: q.mkdir()),
    "json-list": lambda p: p.write_text('["run"]'),
}


def _confused(value: object) -> list[object]:
    """Values of another type than `value`, as a hand-edited file would hold them."""
    if isinstance(value, dict):
        return [["run"], "ln"]
    if isinstance(value, list):
        return ["x", {"a": [1]}]
    if isinstance(value, str):
        return [["run"], 10**30]
    if isinstance(value, bool | int | float):
        return ["ln", -(10**30)]
    return [{}, ["run"]]


def _key_cases(doc: dict, prefix: str = "") -> Iterator[tuple[str, Callable[[dict], None]]]:
    """(name, change) for each top-level key and each key of the first list item/object."""
    for key, value in doc.items():
        for i, bad in enumerate(_confused(value)):
            def change(d: dict, key: str = key, bad: object = bad) -> None:
                d[key] = bad
            yield f"{prefix}{key}={i}", change
    for key in ("trials", "norms", "sessions", "expectations"):
        items = doc.get(key)
        if isinstance(items, list) and items and isinstance(items[0], dict) and not prefix:
            for name, inner in _key_cases(items[0], f"{key}[0]."):
                def change(d: dict, key: str = key, inner: Callable = inner) -> None:
                    inner(d[key][0])
                yield name, change


def _cases(pristine: dict[str, Path]) -> list[tuple[str, str, str, Callable[[Path], None]]]:
    """(kind, file relative to the folder, mutation name, mutate(file))."""
    out = []
    for kind, folder in pristine.items():
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            rel = str(path.relative_to(folder))
            nested = "/" in rel
            # Nested trial/norm folders: structural mutations of their run.json and metrics.json
            # only (the same files as the top-level run, read through the same reader).
            if nested and path.name not in ("run.json", "metrics.json"):
                continue
            for name, mutate in STRUCTURAL.items():
                if nested and name in ("sparse-300MB", "control-chars", "json-list"):
                    continue
                out.append((kind, rel, name, mutate))
            if path.suffix == ".json" and not nested:
                for name, change in _key_cases(json.loads(path.read_text())):
                    out.append((kind, rel, name,
                                lambda p, change=change: _rewrite_json(p, change)))
        if kind == "sweep":
            for name, line in JOURNAL_LINES.items():
                out.append((kind, "journal.jsonl", name,
                            lambda p, line=line: p.write_text(line)))
    return out


JOURNAL_LINES = {
    "run_dir-key": '{"index": 0, "run_dir": "../../../canary"}\n',
    "index-out-of-range": '{"index": 99, "status": "failed"}\n',
    "index-text": '{"index": "0", "status": "failed"}\n',
    "status-list": '{"index": 0, "status": ["failed"]}\n',
    "deep": "[" * 100_000 + "\n",
    "torn-last": '{"index": 0, "status": "failed"}\n{"index": 1, "sta',
}


# --------------------------------------------------------------------------- the commands

def _commands(kind: str, folder: Path, out: Path, store: Path) -> list[list[str]]:
    cmds = [["runs", "-o", str(out), "--all", "--json"], ["runs", "-o", str(out), "--all"],
            ["runs", "show", str(folder), "-o", str(out)],
            ["runs", "show", str(folder), "-o", str(out), "--json"],
            ["report", str(folder), "-o", str(folder.parent / "page.html")],
            ["report", str(folder), "--markdown"]]
    if kind == "run":
        cmds.append(["check", str(folder), "--json"])
    if kind == "compare":
        cmds.append(["check", str(folder / "ln")])
    if kind == "sweep":
        cmds.append(["sweep", "--resume", str(folder), "--dry-run", "--json"])
    return cmds


@pytest.fixture(scope="module")
def cases(pristine: dict[str, Path]) -> list[tuple[str, str, str, Callable[[Path], None]]]:
    return _cases(pristine)


def test_every_mutation_of_every_file_ends_cleanly(pristine: dict[str, Path], cases: list,
                                                   tmp_path: Path) -> None:
    """No exit 70, no traceback, no hang, the listing survives and nothing outside the output
    folder is touched, for every mutation of every file (one test: the folders are copied per
    case, and one failure message lists every failing case)."""
    assert len(cases) > 300
    failures: list[str] = []
    for n, (kind, rel, name, mutate) in enumerate(cases):
        case = tmp_path / f"c{n}"
        (case / "canary").mkdir(parents=True)
        (case / "canary" / "secret.txt").write_text("keep me\n")
        src = pristine[kind]
        folder = case / "out" / src.parent.name / src.name
        shutil.copytree(src, folder, symlinks=True)
        target = folder / rel
        if not target.exists():
            target.write_text("")
        mutate(target)
        before = _snapshot(case / "canary")
        try:
            for cmd in _commands(kind, folder, case / "out", case / "store"):
                res = _cli(*cmd)
                _ok(res, *cmd)
                if cmd[0] == "runs" and len(cmd) > 1 and cmd[1] != "show":
                    assert res.exit_code == 0, f"lnexp {' '.join(cmd)}: {res.output}"
            assert _snapshot(case / "canary") == before, "the canary folder changed"
            assert (case / "canary" / "secret.txt").read_text() == "keep me\n"
        except (AssertionError, Hang) as exc:
            failures.append(f"{kind}/{rel} {name}: {exc}"[:600])
        finally:
            shutil.rmtree(case, ignore_errors=True)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures[:40])
