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

def _commands(kind: str, folder: Path, out: Path, n: int) -> list[list[str]]:
    """What reads a folder back: the listing, show, the report (Markdown; HTML on every third
    case: same document, other renderer), check on runs, resume (--dry-run: every check it
    makes before a trial runs; the deletions are tested above with a real resume)."""
    cmds = [["runs", "-o", str(out), "--all", "--json"], ["runs", "show", str(folder)],
            ["report", str(folder), "--markdown"]]
    if n % 3 == 0:
        cmds.append(["report", str(folder), "-o", str(folder.parent / "page.html")])
    if kind == "run":
        cmds.append(["check", str(folder), "--json"])
    if kind == "compare":
        cmds.append(["check", str(folder / "ln")])
    if kind == "sweep":
        cmds.append(["sweep", "--resume", str(folder), "--dry-run", "--json"])
    return cmds


def _selected(cases: list) -> list:
    """Every case with LNEXP_FUZZ_ALL=1 (661 cases, 4 minutes on 2 cores shared with other
    jobs); otherwise, to fit the test budget, for each kind of folder each mutation once, on
    files taken in turn, plus every journal line."""
    if os.environ.get("LNEXP_FUZZ_ALL") == "1":
        return cases
    groups: dict[tuple[str, str], list] = {}
    for case in cases:
        kind, rel, name, _ = case
        family = name if name in STRUCTURAL or rel == "journal.jsonl" else f"{rel}:type"
        groups.setdefault((kind, family), []).append(case)
    return [group[n * 7 % len(group)] for n, group in enumerate(groups.values())]


@pytest.fixture(scope="module")
def cases(pristine: dict[str, Path]) -> list[tuple[str, str, str, Callable[[Path], None]]]:
    return _selected(_cases(pristine))


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
def test_every_mutation_of_every_file_ends_cleanly(pristine: dict[str, Path], cases: list,
                                                   tmp_path: Path) -> None:
    """No exit 70, no traceback, no hang, the listing survives (exit 0) and nothing outside
    the output folder is touched, for each mutation (one test: the folders are copied per
    case, and one failure message lists every failing case)."""
    assert len(cases) >= 60
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
            for cmd in _commands(kind, folder, case / "out", n):
                res = _cli(*cmd)
                _ok(res, *cmd)
                if cmd[0] == "runs" and cmd[1] != "show":
                    assert res.exit_code == 0, f"lnexp {' '.join(cmd)}: {res.output}"
            assert _snapshot(case / "canary") == before, "the canary folder changed"
        except (AssertionError, Hang) as exc:
            failures.append(f"{kind}/{rel} {name}: {exc}"[:600])
        finally:
            shutil.rmtree(case, ignore_errors=True)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures[:40])


# --------------------------------------------------------------------------- the rows of issue 26

def _copy(pristine: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    (tmp_path / "canary").mkdir()
    (tmp_path / "canary" / "secret.txt").write_text("keep me\n")
    src = pristine[kind]
    folder = tmp_path / "out" / src.parent.name / src.name
    shutil.copytree(src, folder, symlinks=True)
    return folder


@pytest.mark.parametrize("run_dir", ["/ABS", "../../../canary", "", ".", "t000-ln_0/../..",
                                     "t001-bn_0"])
def test_resume_never_removes_a_folder_sweep_json_points_outside(
        pristine: dict[str, Path], tmp_path: Path, run_dir: str) -> None:
    """Row 1: a trial run_dir that is absolute, climbs, is empty or names another trial: exit 2
    naming the trial, nothing deleted (the trial is failed, so resume would remove its folder)."""
    folder = _copy(pristine, "sweep", tmp_path)
    run_dir = run_dir.replace("/ABS", str(tmp_path / "canary"))

    def change(doc: dict) -> None:
        doc["trials"][0].update(run_dir=run_dir, status="failed")
    _rewrite_json(folder / "sweep.json", change)
    before = _snapshot(tmp_path)
    res = _cli("sweep", "--resume", str(folder), "-j", "1")
    assert res.exit_code == 2, res.output
    assert "trial 0" in res.output and "error:" in res.output
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(("line", "why"), [
    ('{"index": 0, "run_dir": "../../../canary", "status": "failed"}', "unknown key 'run_dir'"),
    ('{"index": 0, "status": ["failed"]}', "status is ['failed']"),
    ('{"index": 7, "status": "failed"}', "index 7"),
    ('{"index": 0, "seconds": "' + "9" * 5000 + '"}', "seconds is"),
])
def test_resume_refuses_journal_lines_lnexp_does_not_write(
        pristine: dict[str, Path], tmp_path: Path, line: str, why: str) -> None:
    """Row 1: journal lines accept only known keys and types; exit 2 naming the line, nothing
    deleted. A torn last line (a crash mid-write) is still skipped."""
    folder = _copy(pristine, "sweep", tmp_path)
    (folder / "journal.jsonl").write_text(f'{{"index": 1, "status": "running"}}\n{line}\n')
    before = _snapshot(tmp_path)
    res = _cli("sweep", "--resume", str(folder), "-j", "1")
    assert res.exit_code == 2, res.output
    assert "journal.jsonl: line 2:" in res.output and why in res.output
    assert _snapshot(tmp_path) == before
    (folder / "journal.jsonl").write_text('{"index": 1, "status": "failed"}\n{"index": 0, "st')
    res = _cli("sweep", "--resume", str(folder), "--dry-run")
    assert res.exit_code == 0, res.output


def test_a_trial_folder_that_is_a_symlink_is_not_followed_or_removed(
        pristine: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(pristine, "sweep", tmp_path)
    trial = folder / "t000-ln_0"
    shutil.rmtree(trial)
    trial.symlink_to(tmp_path / "canary")
    _rewrite_json(folder / "sweep.json", lambda d: d["trials"][0].update(status="failed"))
    before = _snapshot(tmp_path)
    res = _cli("sweep", "--resume", str(folder), "-j", "1")
    assert res.exit_code == 2 and "symlink" in res.output, res.output
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(("mutation", "why"), [
    ("fifo", "not a regular file"), ("dev-zero", "not a regular file"),
    ("sparse-300MB", "314,572,800 bytes, more than the 1,048,576"),
    ("deep-list", "nested more than 64"),
    ("huge-int", "not valid JSON"), ("json-list", "not a JSON object")])
def test_bounded_reader_refuses_with_one_line(pristine: dict[str, Path], tmp_path: Path,
                                              mutation: str, why: str) -> None:
    """Rows 2 and 4: run.json a FIFO, /dev/zero, 300 MB, 100,000 deep, a 5,000-digit integer:
    the listing skips it with a warning (exit 0); show, check and report exit 2 with
    "cannot read FILE: why", at once (the alarm turns a wait into a failure)."""
    folder = _copy(pristine, "run", tmp_path)
    STRUCTURAL[mutation](folder / "run.json")
    res = _cli("runs", "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert f"warning: {folder}: skipped: cannot read run.json: {why}" in res.output
    for cmd in (["runs", "show", str(folder)], ["check", str(folder)],
                ["report", str(folder), "--markdown"]):
        res = _cli(*cmd)
        assert res.exit_code == 2, (cmd, res.output)
        assert f"cannot read {folder / 'run.json'}: {why}" in res.output, (cmd, res.output)


@pytest.mark.parametrize(("file", "change", "why"), [
    ("run.json", lambda d: d.update(kind=["run"]), "`kind` is a list, expected text"),
    ("metrics.json", lambda d: d.update(norm="ln"), "`norm` is a text, expected object"),
    ("metrics.json", lambda d: d["stages"]["post_norm"].update(per_feature=[1]),
     "`stages.post_norm.per_feature` is a list"),
])
def test_type_confused_fields_are_one_line(pristine: dict[str, Path], tmp_path: Path,
                                           file: str, change: Callable, why: str) -> None:
    """Row 4: a field of the wrong type: show/check/report exit 2 naming the file and field."""
    folder = _copy(pristine, "run", tmp_path)
    _rewrite_json(folder / file, change)
    for cmd in (["check", str(folder)], ["report", str(folder)],
                ["report", str(folder), "--markdown"]):
        res = _cli(*cmd)
        assert res.exit_code == 2, (cmd, res.output)
        assert f"cannot read {folder / file}: {why}" in res.output, (cmd, res.output)


def test_sweep_params_text_is_refused(pristine: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(pristine, "sweep", tmp_path)
    _rewrite_json(folder / "sweep.json", lambda d: d["trials"][1].update(params="x"))
    for cmd in (["report", str(folder)], ["runs", "show", str(folder)],
                ["sweep", "--resume", str(folder), "--dry-run"]):
        res = _cli(*cmd)
        assert res.exit_code == 2, (cmd, res.output)
        assert "`trials[1].params` is a text, expected object" in res.output, (cmd, res.output)


HOSTILE_TEXT = "evil\x1b[2J\x1b]0;pwned\x07\rfake line [bold red]x[/] <script>alert(1)</script>"


def test_control_characters_and_html_are_escaped(pristine: dict[str, Path],
                                                 tmp_path: Path) -> None:
    """Rows 6 and 7: run.json/metrics.json text holding terminal control sequences and HTML:
    runs, runs show and warnings print them escaped; report --markdown escapes the HTML."""
    folder = _copy(pristine, "run", tmp_path)
    _rewrite_json(folder / "run.json", lambda d: d.update(norm=HOSTILE_TEXT, error=HOSTILE_TEXT,
                                                          status="failed"))
    _rewrite_json(folder / "metrics.json", lambda d: d.update(explanation=[HOSTILE_TEXT]) or
                  d["norm"].update(title=HOSTILE_TEXT))
    for cmd in (["runs", "-o", str(tmp_path / "out")], ["runs", "show", str(folder)],
                ["report", str(folder), "--markdown"]):
        res = _cli(*cmd)
        assert res.exit_code == 0, (cmd, res.output)
        assert not set(res.output) & {"\x1b", "\x07", "\r"}, (cmd, res.output)
        assert "\\x1b[2J" in res.output, (cmd, res.output)
        if cmd[0] == "report":
            assert "<script>" not in res.output and "&lt;script>" in res.output
            assert "</script>" not in res.output
    (tmp_path / "out" / f"x\x1b[2J{HOSTILE_TEXT[:3]}").mkdir()
    (tmp_path / "out" / f"x\x1b[2J{HOSTILE_TEXT[:3]}" / "20260101-000000-aaaaaa").mkdir()
    (tmp_path / "out" / f"x\x1b[2J{HOSTILE_TEXT[:3]}" / "20260101-000000-aaaaaa" /
     "run.json").write_text("{")
    res = _cli("runs", "-o", str(tmp_path / "out"))
    assert res.exit_code == 0 and "warning:" in res.output and "\x1b" not in res.output


def test_report_never_overwrites_a_file_lnexp_wrote(pristine: dict[str, Path],
                                                    tmp_path: Path) -> None:
    """Row 14: `lnexp report RUN -o RUN/metrics.json` (or a link to it) is refused, exit 2."""
    folder = _copy(pristine, "run", tmp_path)
    before = _snapshot(folder)
    (tmp_path / "page.html").symlink_to(folder / "run.json")
    for target in (folder / "metrics.json", folder / "run.json", tmp_path / "page.html"):
        res = _cli("report", str(folder), "-o", str(target))
        assert res.exit_code == 2 and "refusing to overwrite" in res.output, res.output
    assert _snapshot(folder) == before
    res = _cli("report", str(folder), "-o", str(folder / "page.html"))
    assert res.exit_code == 0, res.output


# --------------------------------------------------------------------------- real processes

LNEXP = shutil.which("lnexp", path=str(Path(sys.executable).parent))


@pytest.mark.slow
@pytest.mark.skipif(LNEXP is None, reason="lnexp entry point not installed")
@pytest.mark.parametrize(("mutation", "argv"), [
    ("fifo", ["runs"]), ("fifo", ["runs", "show", "{folder}"]),
    ("dev-zero", ["check", "{folder}"]), ("dev-zero", ["runs"]),
    ("deep-object", ["report", "{folder}"])])
def test_real_process_on_hostile_run_json(pristine: dict[str, Path], tmp_path: Path,
                                          mutation: str, argv: list[str]) -> None:
    """As a user runs it: one line, exit 0 (listing) or 2, within seconds, no traceback."""
    folder = _copy(pristine, "run", tmp_path)
    STRUCTURAL[mutation](folder / "run.json")
    args = [a.format(folder=folder) for a in argv]
    if args[0] == "runs":
        args += ["-o", str(tmp_path / "out")]
    proc = subprocess.run([LNEXP, *args], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == (0 if args[:2] == ["runs", "-o"] else 2), proc.stderr
    assert "Traceback" not in proc.stderr
    listing = args[:2] == ["runs", "-o"]
    assert ("skipped: cannot read run.json" if listing else f"cannot read {folder / 'run.json'}"
            ) in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(LNEXP is None, reason="lnexp entry point not installed")
def test_real_resume_with_a_climbing_run_dir_deletes_nothing(pristine: dict[str, Path],
                                                             tmp_path: Path) -> None:
    folder = _copy(pristine, "sweep", tmp_path)
    _rewrite_json(folder / "sweep.json", lambda d: d["trials"][0].update(
        run_dir="../../../canary", status="failed"))
    before = _snapshot(tmp_path)
    proc = subprocess.run([LNEXP, "sweep", "--resume", str(folder)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "trial 0" in proc.stderr, proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
    assert _snapshot(tmp_path) == before


def test_a_compare_report_reads_no_metrics_outside_its_folder(tmp_path: Path) -> None:
    """comparison.json naming a run_dir outside the compare folder: the report's deep-model
    rows never come from there (they would leak another folder's numbers into the page)."""
    from lnexp.report import compare

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metrics.json").write_text(json.dumps(
        {"layers": {"grad_norm_first_over_last": 123456.0}}))
    folder = tmp_path / "cmp"
    (folder / "ok").mkdir(parents=True)
    norms = [{"status": "completed", "run_dir": d, "name": n, "title": n}
             for n, d in (("ln", "../outside"), ("bn", str(outside)), ("rms", "ok"))]
    rows = compare._compare_rows(norms, folder, {})
    assert "123456" not in json.dumps(rows, default=str) and "deep model" not in str(rows)
