"""What README.md, docs/*.md and configs/*.yaml promise, run as shipped (issue 19).

Commands. Every line of a fenced ```bash / ```console / ```sh block in README.md and docs/*.md
that starts with `lnexp` (after an optional `$ ` prompt) runs as written, through bash, from a
temporary copy of the repository with `.venv/bin` first on PATH. Two changes only: `/tmp/` in
a command becomes this test's own temporary folder (no test writes outside tmp_path), and a
command listed in CUT_DOWN gets the extra arguments written there (fewer steps or trials,
never `output.figures: false` or `output.workers: 1`).

Not runnable here: a block whose fence is preceded, on the line right before it, by the marker

    <!-- not-run: REASON -->

(a GPU, a remote Dask scheduler, a file or folder the reader brings, a placeholder such as
`<timestamp>-<id>`) is skipped whole; so is one command whose end-of-line comment says
`not-run: REASON`. Both stay visible in the page's source, and test_markers_name_a_reason
checks each one says why.

Configs. Every configs/*.yaml runs the way its header says: the `# Run:` line if it has one,
else the first `lnexp sweep|compare|run configs/<it>.yaml` line of the header, in that order
of preference, cut down as CUT_DOWN says.

Each command must exit as documented (EXPECTED_EXIT, else 0), print no `warning:` and no
`Traceback` on stderr (unless the page shows that warning: ALLOWED_WARNINGS), and every run,
compare and sweep folder it leaves must hold each figure the registry (lnexp/registry.py)
promises for its kind, layout and norm, as a decodable PNG of a readable size, and its
`lnexp report` page must build. Folders are shared: each command's folders are checked once.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(bash|console|sh|shell)\s*$")

pytestmark = pytest.mark.slow
TIMEOUT_S = 240  # one command; a loaded 2-core machine runs the slowest in ~60 s

# Commands (as written on the page or in the header, after `/tmp/` was replaced) and what
# is added to make them fit the suite's budget. Never figures off, never one figure worker.
CUT_DOWN: dict[str, list[str]] = {

    "lnexp sweep configs/sweep_batch.yaml": ["--grid", "data.n_samples=2,4,256", "--seeds", "2"],
    "lnexp sweep configs/sweep_batch.yaml -o {tmp}/lnexp": ["--grid", "data.n_samples=2,256",
                                                            "--seeds", "2"],
    # 4 norms x 5 seeds of a 20-block net -> 2 norms, 1 seed (the summary still compares)
    "lnexp sweep configs/deep_sigmoid.yaml": ["--seeds", "1", "--grid", "model.norm=none,bn"],
    "lnexp sweep configs/depth_scan.yaml -j 2": ["--seeds", "1", "--grid", "model.depth=5,10",
                                                 "--grid", "model.init=default"],
    "lnexp sweep configs/digits_batch.yaml -j 2": [
        "--seeds", "1", "--grid", "train.batch_size=8,32", "--grid", "train.epochs=null",
        "--grid", "model.norm=bn,ln", "--set", "train.steps=20"],
    "lnexp sweep configs/pre_vs_post_ln.yaml -j 2": ["--seeds", "1", "--grid",
                                                     "model.depth=2,4"],
    "lnexp sweep configs/precision.yaml -j 2": ["--seeds", "1"],
    "lnexp sweep configs/warmup.yaml -j 2 --x train.lr": [
        "--seeds", "1", "--grid", "train.lr=1.0e-2,3.0e-2", "--set", "train.steps=120"],
    "lnexp sweep configs/deep_tanh.yaml -j 2": ["--seeds", "1", "--grid", "model.init=default"],
    # 100 trials up to depth 64 (~4 min) -> 10 trials at depth 4 and 8
    "lnexp sweep configs/residual_growth.yaml -j 2 --x model.depth": [
        "--seeds", "1", "--grid", "model.depth=4,8"],
    # 40 trainings of 300 steps (~10 min) -> 4 of 60 steps
    "lnexp sweep configs/qk_norm.yaml -j 2 --x train.lr": [
        "--seeds", "1", "--grid", "train.lr=3.0e-2,3.0e-1", "--set", "train.steps=60"],
    "lnexp sweep configs/batch_size.yaml": [
        "--seeds", "1", "--grid", "train.batch_size=2,32", "--set", "train.steps=30"],
    "lnexp sweep configs/sweep_batch.yaml --executor dask -j 2": [
        "--grid", "data.n_samples=2,256", "--seeds", "1"],
    "lnexp run configs/batch_size.yaml": ["--set", "train.steps=30"],
    "lnexp sweep configs/small_batch_norms.yaml -j 2 --x train.batch_size": [
        "--seeds", "1", "--grid", "train.batch_size=8", "--set", "train.steps=20"],
    "lnexp sweep configs/dyt_transformer.yaml -j 2 --x train.lr": [
        "--seeds", "1", "--grid", "train.lr=1.0e-2,3.0e-2", "--set", "train.steps=20"],
    # 1,000,000 rows (~2 min here) -> 50,000: still streamed, in ~25 chunks of 2,048 rows
    "lnexp run configs/large.yaml": ["--set", "data.n_samples=50000"],
    # char-LM (issue 22): 600 steps (~3 min on a quiet core) -> 20, diagnostics every 10
    "lnexp run configs/charlm.yaml": ["--set", "train.steps=20", "--set", "train.warmup_steps=5",
                                      "--set", "train.eval_every=10", "--set",
                                      "train.log_every=10"],
    "lnexp run configs/charlm.yaml --set model.placement=post_residual --set "
    "train.warmup_steps=0": ["--set", "train.steps=20", "--set", "train.eval_every=20"],
    # 90 trials -> 2 (both placements' extremes at one lr, no warm-up), 20 steps each
    "lnexp sweep configs/charlm_placement.yaml -j 2 --x train.lr": [
        "--seeds", "1", "--grid", "model.placement=post_residual,peri_residual", "--grid",
        "train.warmup_steps=0", "--grid", "train.lr=1.0e-2", "--set", "train.steps=20"],
    "lnexp run configs/charlm_placement.yaml --set model.placement=post_residual": [
        "--set", "train.steps=20"],
    # 20 trials -> 2, 20 steps each, diagnostics every 10
    "lnexp sweep configs/charlm_norms.yaml -j 2": [
        "--seeds", "1", "--grid", "model.norm=ln,none", "--set", "train.steps=20", "--set",
        "train.warmup_steps=5", "--set", "train.log_every=10"],
    "lnexp run configs/charlm_norms.yaml --set model.norm=none --set output.figures=true": [
        "--set", "train.steps=20", "--set", "train.warmup_steps=5", "--set",
        "train.log_every=10"],
    # lnexp speed: shorter timing blocks (0.2 s -> 0.02 s); the defaults still compile, two
    # norms of six (a first compile can take a minute on a loaded 2-core machine)
    "lnexp speed -o {tmp}/lnexp": ["--min-time", "0.02", "--norm", "ln", "--norm", "rms"],
    "lnexp speed --layout all --no-compile -o {tmp}/lnexp": ["--min-time", "0.02"],
    "lnexp speed --shape 8x128x512 --dtype float32,bfloat16 --norm ln --norm rms --threads 1 "
    "--expect 'rms/ln <= 20' -o {tmp}/lnexp": ["--min-time", "0.02", "--no-compile"],
}
# A cut-down that changes what the page wrote (a key swept twice is refused): old -> new.
REWRITE: dict[str, tuple[str, str]] = {
    # 45 trials -> 6 (two grid keys still crossed)
    "lnexp sweep configs/default.yaml --grid model.norm=bn,ln,rms --grid data.n_samples=2,8,32 "
    "--seeds 5": ("data.n_samples=2,8,32 --seeds 5", "data.n_samples=2,8 --seeds 1"),
}
# Commands a page shows failing on purpose, and their documented exit code.
EXPECTED_EXIT: dict[str, int] = {
    "lnexp validate configs/default.yaml name=123": 2,
    "lnexp run configs/default.yaml model.norm=bn,ln": 2,
    "lnexp run configs/single_sample.yaml": 0,
}
# `warning:` lines a page shows next to the command that prints them.
ALLOWED_WARNINGS: dict[str, str] = {}


@dataclass(frozen=True)
class Command:
    where: str  # page:line or configs/<file>
    line: str  # as written (with {tmp} for /tmp/)


def page_commands() -> tuple[list[Command], list[tuple[str, str]]]:
    """(the runnable commands, (where, reason) of every not-run marker)."""
    out: list[Command] = []
    markers: list[tuple[str, str]] = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        i = 0
        while i < len(lines):
            if not FENCE.match(lines[i]):
                i += 1
                continue
            marker = MARKER.search(lines[i - 1]) if i else None
            where = f"{page.relative_to(ROOT)}:{i + 1}"
            if marker:
                markers.append((where, marker.group(1)))
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                text = lines[j].strip().removeprefix("$ ")
                line_marker = re.search(r"#.*not-run:\s*(.*?)\)?$", text)
                if line_marker:
                    markers.append((f"{page.relative_to(ROOT)}:{j + 1}", line_marker.group(1)))
                elif text.startswith("lnexp") and not marker:
                    out.append(Command(f"{page.relative_to(ROOT)}:{j + 1}",
                                       text.replace("/tmp/", "{tmp}/")))
                j += 1
            i = j + 1
    return out, markers


def config_commands() -> list[Command]:
    out = []
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
        rel = f"configs/{path.name}"
        mine = re.compile(rf"(lnexp (?:run|compare|sweep) (?:--config )?{re.escape(rel)}\b[^`]*?)"
                          r"(?:\s{2,}#.*|\s{2,}\(.*)?$")
        found = [m.group(1).strip() for ln in header
                 if (m := mine.search(ln.lstrip("# ").removeprefix("Run: ")))]
        run_line = [m.group(1).strip() for ln in header if ln.startswith("# Run:")
                    and (m := mine.search(ln.removeprefix("# Run: ")))]
        assert found, f"{rel}: its header names no `lnexp run|compare|sweep {rel}` command"
        pick = run_line or [c for c in found if c.startswith("lnexp sweep")] or \
            [c for c in found if c.startswith("lnexp compare")] or found
        out.append(Command(rel, pick[0]))
    return out


def _strip_shell(line: str) -> str:
    """The command without an end-of-line comment."""
    parts = shlex.split(line, comments=True, posix=True)
    return " ".join(parts)


@dataclass
class Ran:
    cmd: Command
    argv: str
    rc: int
    stdout: str
    stderr: str
    out_dir: Path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository (without outputs/ or caches); commands run from it."""
    dst = tmp_path_factory.mktemp("repo")
    for name in ("README.md", "docs", "configs", "lnexp", "examples", "pyproject.toml",
                 "lnexp-config.schema.json"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst / name)
    return dst


def _run(repo: Path, tmp: Path, cmd: Command, extra: list[str]) -> Ran:
    out_dir = tmp / re.sub(r"[^A-Za-z0-9]+", "_", cmd.where)
    out_dir.mkdir(parents=True, exist_ok=True)
    if _key(cmd) in REWRITE:
        cmd = Command(cmd.where, cmd.line.replace(*REWRITE[_key(cmd)]))
    line = cmd.line.replace("{tmp}", str(out_dir))
    # A page's earlier line made the folders a later one writes a file into (-o /tmp/x/f.json)
    for path in re.findall(r"\{tmp\}/[^\s\"')]+", cmd.line):
        target = Path(path.replace("{tmp}", str(out_dir)))
        (target.parent if target.suffix else target).mkdir(parents=True, exist_ok=True)
    argv = line
    if extra:  # before an end-of-line comment, a pipe or a redirection
        head = re.split(r"\s+(?=#|\||>)", line, maxsplit=1)
        argv = head[0] + " " + " ".join(shlex.quote(a) for a in extra) + (
            " " + line[len(head[0]):].lstrip() if len(head) > 1 else "")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(repo), "COLUMNS": "120", "NO_COLOR": "1"}
    env.pop("LNEXP_TEST_TRIAL_HOLD_S", None)
    # A command with no -o writes into the copy's outputs/ (checked with the others).
    try:
        p = subprocess.run(["bash", "-o", "pipefail", "-c", argv], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        return Ran(cmd, argv, 124, str(exc.stdout or ""), f"timed out after {TIMEOUT_S} s",
                   out_dir)
    return Ran(cmd, argv, p.returncode, p.stdout, p.stderr, out_dir)


def _key(cmd: Command) -> str:
    return _strip_shell(cmd.line) if "#" in cmd.line else cmd.line


@pytest.fixture(scope="module")
def ran(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Ran]:
    """Every command, two at a time (the machine's cores; each sweep uses its own -j)."""
    tmp = tmp_path_factory.mktemp("shipped")
    cmds = [*page_commands()[0], *config_commands()]
    # the same command on two pages runs once
    unique: dict[str, Command] = {}
    for c in cmds:
        unique.setdefault(_key(c), c)
    jobs = [(c, CUT_DOWN.get(_key(c), CUT_DOWN.get(c.line, []))) for c in unique.values()]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda job: _run(repo, tmp, *job), jobs))


def test_markers_name_a_reason() -> None:
    _, markers = page_commands()
    for where, reason in markers:
        assert len(reason) >= 8, f"{where}: a not-run marker says why"


def test_every_config_header_names_how_to_run_it() -> None:
    assert len(config_commands()) == len(list((ROOT / "configs").glob("*.yaml")))


def test_each_command_exits_as_documented_and_quietly(ran: list[Ran]) -> None:
    problems = []
    for r in ran:
        want = EXPECTED_EXIT.get(_key(r.cmd), 0)
        if r.rc != want:
            problems.append(f"{r.cmd.where}: `{r.argv}` exit {r.rc}, documented {want}:\n"
                            f"{r.stderr[-800:]}")
        for bad in ("Traceback", "warning:"):
            allowed = ALLOWED_WARNINGS.get(_key(r.cmd), "")
            if bad in r.stderr and not (bad == "warning:" and allowed and allowed in r.stderr):
                problems.append(f"{r.cmd.where}: `{r.argv}` printed {bad!r}:\n"
                                f"{r.stderr[-800:]}")
    assert not problems, "\n\n".join(problems)


def _folders(ran: list[Ran], repo: Path) -> list[Path]:
    found = set()
    for base in [repo / "outputs", *(r.out_dir for r in ran)]:
        for info in base.rglob("run.json"):
            found.add(info.parent)
    return sorted(found)


def _check_png(path: Path) -> str | None:
    from PIL import Image

    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as exc:  # a broken PNG is the finding
        return f"not a decodable PNG ({type(exc).__name__}: {exc})"
    if im.format != "PNG" or w < 400 or h < 300:
        return f"{im.format} {w}x{h}, not a readable PNG"
    return None


def test_every_folder_has_its_figures_and_a_report(ran: list[Ran], repo: Path) -> None:
    from lnexp import registry, report
    from lnexp.config import load_config

    problems: list[str] = []
    folders = _folders(ran, repo)
    kinds = {"run": 0, "compare": 0, "sweep": 0}
    for folder in folders:
        info = json.loads((folder / "run.json").read_text())
        kind, status = info.get("kind"), info.get("status")
        if kind not in kinds or status not in ("completed", "partial"):
            continue
        kinds[kind] += 1
        if kind == "sweep":
            doc = json.loads((folder / "sweep.json").read_text())
            promised = ["summary.png"] if doc.get("group_keys") else []
        else:
            cfg = load_config(folder / "config.yaml")
            specs = registry.run_figures(cfg) if kind == "run" else \
                registry.compare_figures(cfg)
            promised = [s.file for s in specs]
        for f in promised:
            why = _check_png(folder / f)
            if why:
                problems.append(f"{folder}: {f} {why}")
        try:
            html = report.to_html(report.read_folder(folder))
            assert "<html" in html.lower()
        except Exception as exc:
            problems.append(f"{folder}: lnexp report failed: {type(exc).__name__}: {exc}")
    assert not problems, "\n".join(problems)
    assert all(kinds.values()), kinds  # every kind was exercised
