"""Bad input: each case asserts the exit code, the key part of the message, and that no file
outside a new run folder changed. In-process (CliRunner) so the whole file takes seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lnexp.cli import app


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root -> (size, mtime_ns)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# (id, config text or None for "no file", extra args, message parts)
CASES = [
    ("missing file", None, [], ["missing.yaml: no such file"]),
    ("empty file", "", [], ["the file is empty"]),
    ("comment only", "# nothing here\n", [], ["the file is empty"]),
    ("list", "- name: a\n- name: b\n", [], ["expected a mapping", "got a list"]),
    ("yaml syntax", "name: x\nmodel:\n  norm: [ln\nseed: 1\n", [], ["cfg.yaml:4", "invalid YAML"]),
    ("unknown key", "name: x\nmodel:\n  nrom: ln\n",
     [], ["cfg.yaml:3: model.nrom: unknown key (did you mean 'model.norm'?)"]),
    ("key in wrong section", "norm: bn\n", [], ["unknown key (did you mean 'model.norm'?)"]),
    ("wrong type", "data:\n  n_samples: many\n",
     [], ["cfg.yaml:2: data.n_samples", "integer", "'many'"]),
    ("wrong type bool", "model:\n  affine: 3\n", [], ["model.affine", "boolean"]),
    ("zero and negative sizes", "data:\n  n_samples: 0\nmodel:\n  out_features: -5\n",
     [], ["cfg.yaml:2: data.n_samples", "cfg.yaml:4: model.out_features",
          "greater than or equal to 1"]),
    ("sample_index out of range", "sample_index: 10\ndata:\n  n_samples: 10\n",
     [], ["sample_index 10 is out of range", "0..9"]),
    ("unknown norm", "model:\n  norm: layernorm\n", [], ["unknown norm 'layernorm'", "ln"]),
    ("group does not divide", "model:\n  norm: group\n  groups: 7\n",
     [], ["7 groups do not divide 50 features", "divisors: 1, 2, 5, 10, 25, 50"]),
    ("name escapes", "name: ../../etc\n", [], ["name", "cannot leave output.dir", "../../etc"]),
    ("name escapes via --set", "{}\n", ["--set", "name=../x"], ["cannot leave output.dir"]),
    ("bad --set", "{}\n", ["--set", "model.nrom=bn"], ["--set model.nrom: unknown key",
                                                       "model.norm"]),
    ("beyond MAX_DIM", "data:\n  n_samples: 1000000000000000\n",
     [], ["data.n_samples", "less than or equal to 2147483647"]),
    ("unknown expect metric", "expect:\n  post_norm.per_sampel.mean.abs_max: {le: 1.0e-6}\n",
     [], ["cfg.yaml:2", "unknown metric", "did you mean 'post_norm.per_sample.mean'"]),
    ("unknown reducer", "expect:\n  post_norm.global.mean.absmax: {le: 1}\n",
     [], ["unknown reducer 'absmax'", "abs_max"]),
    ("unknown comparator", "expect:\n  post_norm.global.mean.max: {lte: 1}\n",
     [], ["unknown comparator", "le, ge, lt, gt, approx"]),
    ("bad --expect", "{}\n", ["--expect", "post_norm.per_sample.mean.abs_max << 1"],
     ["--expect", "expected 'METRIC.REDUCER OP VALUE'"]),
    ("bad --expect metric", "{}\n", ["--expect", "post_norm.nope.mean.max <= 1"],
     ["--expect 'post_norm.nope.mean.max <= 1'", "unknown metric"]),
]


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize(("text", "extra", "parts"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_config_errors_exit_2(work: Path, command: str, text: str | None, extra: list[str],
                              parts: list[str]) -> None:
    name = "missing.yaml" if text is None else "cfg.yaml"
    if text is not None:
        (work / name).write_text(text)
    before = snapshot(work)
    res = invoke([command, name, "-o", "out", *extra] if command == "run"
                 else [command, name, *extra])
    assert res.exit_code == 2, res.output
    for part in parts:
        assert part in res.stderr, (part, res.stderr)
    assert "Traceback" not in res.output
    assert snapshot(work) == before


def test_directory_as_config(work: Path) -> None:
    (work / "adir").mkdir()
    before = snapshot(work)
    res = invoke(["run", "adir", "-o", "out"])
    assert res.exit_code == 2
    assert "adir: is a directory" in res.stderr
    assert snapshot(work) == before


def test_every_problem_at_once(work: Path) -> None:
    (work / "cfg.yaml").write_text("seed: -1\ndata:\n  scale: 0\nmodel:\n  eps: x\n  nrom: ln\n")
    res = invoke(["validate", "cfg.yaml", "--json"])
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == 1 and doc["valid"] is False
    assert len(doc["problems"]) == 4, doc["problems"]
    for key, line in (("seed", 1), ("data.scale", 3), ("model.eps", 5), ("model.nrom", 6)):
        assert any(p.startswith(f"cfg.yaml:{line}: {key}") for p in doc["problems"]), key


@pytest.mark.parametrize("where", ["file", "--set"])
def test_python_tag_refused_nothing_executed(work: Path, where: str) -> None:
    marker = work / "pwned"
    payload = f"!!python/object/apply:os.system ['touch {marker}']"
    if where == "file":
        (work / "cfg.yaml").write_text(f"name: x\nseed: {payload}\n")
        args = ["run", "cfg.yaml", "-o", "out"]
    else:
        (work / "cfg.yaml").write_text("{}\n")
        args = ["run", "cfg.yaml", "-o", "out", "--set", f"seed={payload}"]
    before = snapshot(work)
    res = invoke(args)
    assert res.exit_code == 2
    assert ("YAML tag refused" if where == "file" else "not valid YAML") in res.stderr
    assert "cfg.yaml:2" in res.stderr or where == "--set"
    assert not marker.exists()
    assert snapshot(work) == before


def test_absurd_sizes_refused_quickly(work: Path) -> None:
    (work / "cfg.yaml").write_text("data:\n  n_samples: 1000000000\nmodel:\n  in_features: "
                                   "1000000\n  out_features: 100000\n")
    before = snapshot(work)
    t0 = time.perf_counter()
    res = invoke(["run", "cfg.yaml", "-o", "out"])
    elapsed = time.perf_counter() - t0
    assert res.exit_code == 2
    assert "resource guard" in res.stderr and "above the limit" in res.stderr
    assert elapsed < 2.0, elapsed
    assert snapshot(work) == before


def test_guard_limit_is_configurable(work: Path) -> None:
    (work / "cfg.yaml").write_text("limits:\n  max_memory_gb: 0.0001\n")
    res = invoke(["validate", "cfg.yaml"])
    assert res.exit_code == 2
    assert "limits.max_memory_gb 0.0001" in res.stderr


@pytest.mark.parametrize("kind", ["file", "under a file"])
def test_unwritable_output_dir(work: Path, kind: str) -> None:
    (work / "cfg.yaml").write_text("output:\n  figures: false\n")
    (work / "afile").write_text("x")
    target = "afile" if kind == "file" else "afile/sub"
    before = snapshot(work)
    res = invoke(["run", "cfg.yaml", "-o", target, "--json"])
    assert res.exit_code == 2
    assert f"output folder {target}" in res.stderr
    assert json.loads(res.stdout)["kind"] == "error"
    assert snapshot(work) == before


def _new_run_dir(work: Path, before: dict[str, tuple[int, int]]) -> Path:
    """The one new run folder; asserts nothing else changed."""
    after = snapshot(work)
    changed = {k for k in after if before.get(k) != after[k]} | (before.keys() - after.keys())
    dirs = {str(Path(k).parent) for k in changed if Path(k).name == "run.json"}
    assert len(dirs) == 1, changed
    (run_dir,) = dirs
    assert all(k.startswith(run_dir + "/") for k in changed), changed
    return work / run_dir


NAN_CASES = [
    ("scale overflows float32", "data:\n  scale: 1.0e39\n", "input", {"inf"}),
    ("values overflow float32", "data:\n  values: [[1.0e39, 1.0, 2.0, 3.0]]\nmodel:\n"
     "  linear: false\n", "input", {"inf"}),
    ("eps 0 on constant rows", "data:\n  values: [[1, 1, 1, 1], [2, 2, 2, 2]]\nmodel:\n"
     "  linear: false\n  eps: 0\n", "post_norm", {"nan"}),
]


@pytest.mark.parametrize(("text", "first", "kinds"), [c[1:] for c in NAN_CASES],
                         ids=[c[0] for c in NAN_CASES])
def test_numeric_trouble_reported(work: Path, text: str, first: str, kinds: set[str]) -> None:
    (work / "cfg.yaml").write_text("output:\n  figures: false\n" + text)
    before = snapshot(work)
    res = invoke(["run", "cfg.yaml", "-o", "out"])
    assert res.exit_code == 0, res.output
    assert f"warning: numeric trouble: NaN/Inf first appears in {first}" in res.stderr
    run_dir = _new_run_dir(work, before)
    doc = json.loads((run_dir / "metrics.json").read_text())
    trouble = doc["numeric_trouble"]
    assert trouble["detected"] and trouble["first_stage"] == first
    assert all(trouble[first][k] > 0 for k in kinds)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_numeric_trouble_fails_an_expectation(work: Path) -> None:
    (work / "cfg.yaml").write_text("output:\n  figures: false\ndata:\n  scale: 1.0e39\n")
    res = invoke(["run", "cfg.yaml", "-o", "out", "--json",
                  "--expect", "numeric_trouble.post_norm.nonfinite.max <= 0",
                  "--expect", "post_norm.per_sample.mean.abs_max <= 1"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert [r["passed"] for r in doc["expectations"]] == [False, False]
    assert doc["expectations"][1]["value"] is None
    assert "NaN/Inf" in doc["expectations"][1]["note"]


def test_numeric_trouble_with_figures(work: Path) -> None:
    """Figures survive all-NaN activations (nothing crashes, PNGs are written)."""
    (work / "cfg.yaml").write_text(NAN_CASES[2][1] + "output:\n  dpi: 30\n")
    before = snapshot(work)
    res = invoke(["run", "cfg.yaml", "-o", "out", "-q"])
    assert res.exit_code == 0, res.output
    run_dir = _new_run_dir(work, before)
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == ["heatmap.png",
                                                                      "overview.png"]
