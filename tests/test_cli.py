"""The CLI, in-process (Typer's CliRunner) and as the installed `lnexp` entry point."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lnexp import __version__
from lnexp.cli import app
from tests.conftest import CONFIGS, ROOT, run_json

SMALL_CONFIG = CONFIGS / "default.yaml"


def test_run_json_reproduces_the_tutorial(invoke, tmp_path):
    doc = run_json(invoke, tmp_path, CONFIGS / "default.yaml")
    assert doc["schema_version"] == 1
    s = doc["sample"]
    assert s["index"] == 0
    assert s["pre_norm"]["mean"] == pytest.approx(-0.06453948, abs=1e-8)
    assert s["pre_norm"]["var_unbiased"] == pytest.approx(0.37890887, abs=1e-7)
    assert s["post_norm"]["var_unbiased"] == pytest.approx(1.02038061, abs=1e-7)
    post = doc["stages"]["post_norm"]
    assert len(post["per_feature"]["var"]) == 50 and len(post["per_sample"]["var"]) == 100
    assert doc["verdict"]["per_sample"]["standardized"] is True
    assert doc["verdict"]["per_feature"]["standardized"] is False
    assert Path(doc["run_dir"]).is_dir()


def test_metrics_json_contract(invoke, tmp_path):
    doc = run_json(invoke, tmp_path, CONFIGS / "default.yaml")
    run_dir = Path(doc.pop("run_dir"))
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk == doc, "--json prints the same object as metrics.json (plus run_dir)"
    assert on_disk["config"]["model"]["norm"] == "ln"
    for stage in ("pre_norm", "post_norm"):
        for axis in ("per_feature", "per_sample"):
            a = on_disk["stages"][stage][axis]
            assert {"mean", "var", "var_unbiased", "std"} <= set(a)
        assert {"mean", "var", "var_unbiased", "std", "min", "max"} <= \
            set(on_disk["stages"][stage]["global"])
        assert {"mean", "var", "var_unbiased"} <= set(on_disk["sample"][stage])
    assert "biased" in on_disk["labels"]["var"] and "n-1" in on_disk["labels"]["var_unbiased"]


def test_run_folder_layout(invoke, tmp_path):
    doc = run_json(invoke, tmp_path, CONFIGS / "default.yaml", figures=True)
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent == tmp_path / "out" / "default"
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")}
    assert names == {"config.yaml", "metrics.json", "stats.csv", "env.json", "run.json",
                     "figures", "figures/overview.png", "figures/heatmap.png"}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    umask = os.umask(0)
    os.umask(umask)
    for f in ("metrics.json", "figures/overview.png"):  # atomic writes keep normal permissions
        assert (run_dir / f).stat().st_mode & 0o777 == 0o666 & ~umask
    assert not list(run_dir.rglob(".*.tmp")), "no temp files left behind"
    env = json.loads((run_dir / "env.json").read_text())
    assert env["seed"] == 0 and env["torch"] and env["lnexp"] == __version__
    lines = (run_dir / "stats.csv").read_text().splitlines()
    assert lines[0] == "stage,axis,index,mean,var,var_unbiased,std"
    assert len(lines) == 1 + 2 * (50 + 100)


def test_two_runs_never_share_a_folder(invoke, tmp_path):
    a = run_json(invoke, tmp_path, CONFIGS / "default.yaml")["run_dir"]
    b = run_json(invoke, tmp_path, CONFIGS / "default.yaml")["run_dir"]
    assert a != b and Path(a).is_dir() and Path(b).is_dir()


def test_human_output_explains_the_norm(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "default.yaml"), "-o", str(tmp_path),
                    "--set", "output.figures=false")
    assert result.exit_code == 0
    out = result.stdout
    assert "var (biased, ÷n)" in out and "var (unbiased, ÷(n−1))" in out
    assert "Every sample now has mean 0, variance 1 across its 50 features" in out
    assert "per-feature variance ranges 0.588 to 1.3" in out
    assert "\x1b[" not in out, "no colour codes when stdout is not a terminal"


def test_single_sample_output_explains_biased_vs_unbiased(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "single_sample.yaml"), "-o", str(tmp_path),
                    "--set", "output.figures=false")
    assert result.exit_code == 0
    out = result.stdout
    assert "[-0.7071, 0.0000, 1.4142, -1.4142, 0.7071]" in out
    assert "1.2500" in out and "× 5/4" in out


def test_quiet_prints_only_the_run_folder(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "bn.yaml"), "-q", "-o", str(tmp_path),
                    "--set", "output.figures=false")
    assert result.exit_code == 0
    (line,) = result.stdout.splitlines()
    assert Path(line).is_dir() and Path(line).parent.name == "bn"


def test_overrides_reach_the_run(invoke, tmp_path):
    doc = run_json(invoke, tmp_path, CONFIGS / "default.yaml", "model.norm=bn", "seed=3")
    assert doc["config"]["model"]["norm"] == "bn" and doc["config"]["seed"] == 3
    assert doc["verdict"]["per_feature"]["standardized"] is True


def test_bad_config_is_one_line_exit_2_and_writes_nothing(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "default.yaml"), "-o", str(tmp_path / "o"),
                    "--set", "model.nrom=bn")
    assert result.exit_code == 2
    assert result.stderr.strip() == \
        "error: --set model.nrom: unknown key (did you mean 'model.norm'?)"
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_bn_batch_of_one_exits_2_with_the_reason(invoke, tmp_path):
    result = invoke("run", str(CONFIGS / "bn.yaml"), "-o", str(tmp_path),
                    "--set", "data.n_samples=1")
    assert result.exit_code == 2
    assert "not defined for a batch of 1 in train mode" in result.stderr


def test_validate_and_config_show(invoke):
    ok = invoke("validate", str(CONFIGS / "bn.yaml"))
    assert ok.exit_code == 0 and "ok" in ok.stdout
    shown = invoke("config", "show", str(CONFIGS / "default.yaml"), "--set", "model.norm=rms")
    assert shown.exit_code == 0 and "norm: rms" in shown.stdout


# ----------------------------------------------------------------- the installed entry point

LNEXP = shutil.which("lnexp", path=str(Path(sys.executable).parent))


@pytest.mark.slow  # starts real processes
@pytest.mark.skipif(LNEXP is None, reason="lnexp entry point not installed in this venv")
def test_installed_entry_point_runs_and_prints_json(tmp_path):
    proc = subprocess.run(
        [LNEXP, "run", str(CONFIGS / "default.yaml"), "--json", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert doc["sample"]["post_norm"]["var_unbiased"] == pytest.approx(1.02038061, abs=1e-7)
    assert (Path(doc["run_dir"]) / "figures" / "overview.png").stat().st_size > 10_000


@pytest.mark.slow  # starts real processes
def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "lnexp", "--version"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lnexp {__version__}"


@pytest.mark.slow  # starts real processes
def test_help_does_not_import_torch_matplotlib_or_the_optional_tools():
    code = ("import sys\nfrom lnexp.cli import app\n"
            "try:\n    app(['--help'], prog_name='lnexp')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'matplotlib', 'numpy', 'pydantic', 'mlflow',\n"
            "                     'dask', 'distributed',\n"
            "                     'jsonschema', 'lnexp.report', 'lnexp.export',\n"
            "                     'lnexp.config', 'lnexp.overrides')\n"
            "         if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: lnexp" in proc.stdout and "Exit codes" in proc.stdout
    assert proc.stdout.strip().endswith("HEAVY []")


# --------------------------------------------------------------------------- help text

def _commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        out += [[name, sub] for sub in subs] if subs else [[name]]
    return out


def test_help_summaries_are_whole_sentences_and_exit_codes_print_once(invoke):
    text = invoke("--help", env={"COLUMNS": "200"}).stdout
    assert text.count("Exit codes:") == 1
    listed = text.split("Commands:")[1].strip().splitlines()
    assert len(listed) >= 9
    for line in listed:
        summary = line.split(None, 1)[1]
        assert summary.endswith(".") and "e.g" not in summary and "..." not in summary, line


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_shows_no_python_types(invoke, command):
    text = invoke(*command, "--help", env={"COLUMNS": "100"}).stdout
    assert "Usage: lnexp" in text
    assert not re.search(r"<(list\[|int|str|float|path|bool|text|integer)", text), text


def test_help_wording_per_command(invoke):
    def options(*cmd: str) -> str:
        return " ".join(invoke(*cmd, "--help", env={"COLUMNS": "200"}).stdout.split())

    assert "Print only the run folder" in options("run")
    assert "Print only the compare folder" in options("compare")
    assert "Print only the sweep folder" in options("sweep")
    compare_set = options("compare").split("--set KEY=VALUE")[1].split("--json")[0]
    assert "model.norm" not in compare_set and "data.n_samples=8" in compare_set


# --------------------------------------------------------------------------- overrides

def test_positional_overrides_equal_set(invoke):
    a = invoke("config", "show", str(SMALL_CONFIG), "model.norm=bn", "seed=3", "--json")
    b = invoke("config", "show", str(SMALL_CONFIG), "--set", "model.norm=bn", "--set", "seed=3",
               "--json")
    assert a.exit_code == b.exit_code == 0, a.output
    assert json.loads(a.stdout)["config"] == json.loads(b.stdout)["config"]
    assert json.loads(a.stdout)["config"]["model"]["norm"] == "bn"
    assert invoke("validate", str(SMALL_CONFIG), "seed=3").exit_code == 0


def test_hydra_forms_and_yaml_surprises_get_hints(invoke):
    res = invoke("validate", str(SMALL_CONFIG), "+seed=3", "~train")
    assert res.exit_code == 2
    assert "so write seed=3" in res.stderr and "cannot delete a key" in res.stderr
    res = invoke("validate", str(SMALL_CONFIG), "name=123", "--set", "model.norm=no")
    assert res.exit_code == 2
    assert "quote it for the text: 'name=\"123\"'" in res.stderr
    assert "quote it for the text: --set 'model.norm=\"no\"'" in res.stderr
    res = invoke("run", str(SMALL_CONFIG), "model.norm=bn,ln")
    assert res.exit_code == 2 and "--grid model.norm=bn,ln" in res.stderr


def test_compare_takes_norms_and_overrides_positionally(invoke, tmp_path):
    res = invoke("compare", "bn", "ln", "data.n_samples=8", "output.figures=false",
                 "--config", str(SMALL_CONFIG), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [n["name"] for n in doc["norms"]] == ["bn", "ln"]
    assert doc["config"]["data"]["n_samples"] == 8
    res = invoke("compare", "bn", "lnn", "--config", str(SMALL_CONFIG))
    assert res.exit_code == 2 and "lnn" in res.stderr


# --------------------------------------------------------------------------- narrow output

def _lines(text: str) -> list[str]:
    return text.splitlines()


def _rows(text: str, label: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip())[1:] for line in _lines(text)
            if line.strip().startswith(label)]


def test_compare_at_60_columns_keeps_numbers_whole(invoke, tmp_path):
    args = ("compare", "--config", str(SMALL_CONFIG), "output.figures=false")
    narrow = invoke(*args, env={"COLUMNS": "60"})
    wide = invoke(*args, env={"COLUMNS": "250"})
    assert narrow.exit_code == wide.exit_code == 0, narrow.output
    assert max(map(len, _lines(narrow.stdout))) <= 60
    for label in ("per-feature var (biased)", "per-sample mean", "output RMS"):
        whole = [cell for row in _rows(wide.stdout, label) for cell in row]
        split = [cell for row in _rows(narrow.stdout, label) for cell in row]
        assert split == whole and len(whole) == 6, (label, split, whole)


def test_runs_at_60_columns_keeps_the_id(invoke, tmp_path):
    out = tmp_path / "out"
    invoke("run", str(SMALL_CONFIG), "-q", "output.figures=false",
           "name=a-rather-long-config-name-for-the-table")
    invoke("compare", "--config", str(SMALL_CONFIG), "-q", "output.figures=false")
    res = invoke("runs", "-o", str(out), env={"COLUMNS": "60"})
    assert res.exit_code == 0, res.output
    assert max(map(len, _lines(res.stdout))) <= 60
    ids = [p.name.rsplit("-", 1)[-1] for p in sorted(out.glob("*/*"))]
    assert len(ids) == 2 and all(re.search(rf"\s{i}$", res.stdout, re.M) for i in ids)


def test_piped_output_honours_columns_without_trailing_spaces(invoke):
    for columns in ("60", "90"):
        res = invoke("run", str(SMALL_CONFIG), "output.figures=false",
                     env={"COLUMNS": columns})
        assert res.exit_code == 0, res.output
        lines = _lines(res.stdout)
        assert not [line for line in lines if line != line.rstrip()]
        assert max(map(len, lines)) <= int(columns)


def test_cuda_without_a_gpu_is_a_clear_exit_2(invoke):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = invoke("run", str(CONFIGS / "default.yaml"), "--set", "device=cuda")
    assert res.exit_code == 2 and "torch sees no CUDA GPU" in res.output
