"""lnexp.export.mlflow: folders into a real sqlite MLflow store, read back with MLflow's
client. The store is created once (about 5 s of schema migrations)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lnexp import registry
from lnexp.errors import ExportError
from lnexp.expect import metric_value
from lnexp.export import describe
from lnexp.export import mlflow as ex

# `import mlflow` costs ~2 s: only the store tests (all slow) import it, not collection.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                reason="needs the mlflow extra")


# --------------------------------------------------------------------------- pure parts

def test_tracking_uri_option_then_environment_then_output_folder(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000"}
    assert ex.tracking_uri("sqlite:///x.db", tmp_path, env) == "sqlite:///x.db"
    assert ex.tracking_uri(None, tmp_path, env) == "http://mlflow.example:5000"
    uri = ex.tracking_uri(None, tmp_path / "out", {})
    assert uri == f"sqlite:///{tmp_path}/out/mlflow.db"
    assert ex.artifact_root(uri) == (tmp_path / "out" / "mlartifacts").as_uri()
    assert ex.artifact_root("http://mlflow.example:5000") is None


def test_ids_params_and_metrics_come_from_the_folder(folders: dict[str, Path]) -> None:
    run, sweep = folders["run"], folders["sweep"]
    assert ex.lnexp_id(run) == f"default/{run.name}"
    trial = next(p for p in sorted(sweep.iterdir()) if p.name.startswith("t000"))
    assert ex.lnexp_id(trial) == f"default-sweep/{sweep.name}/{trial.name}"
    doc = json.loads((run / "metrics.json").read_text())
    params = ex.params_of(doc["config"])
    assert params["model.norm"] == "ln" and params["data.n_samples"] == "16"
    assert params["train"] == "null"
    assert params["expect.post_norm.per_sample.var.min.ge"] == "0.99"
    scalars = describe.headline_metrics(doc)
    # lnexp's own names (the registry's headline metrics), the values lnexp itself reports
    assert set(registry.HEADLINE_METRICS) <= set(scalars)
    for key in registry.HEADLINE_METRICS:
        assert scalars[key] == metric_value(doc, key)
    assert scalars["expectations.failed"] == 1.0 and scalars["expectations.passed"] == 1.0
    assert len(scalars) < 12 and not any(k.startswith(("stages.", "verdict.")) for k in scalars)


def test_a_missing_mlflow_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                           folders: dict[str, Path],
                                           tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ExportError, match=r"pip install 'lnexp\[mlflow\]'"):
        ex.export([folders["run"]], f"sqlite:///{tmp_path}/m.db")


def test_a_folder_that_is_not_lnexps_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not an lnexp folder"):
        ex.export([tmp_path], f"sqlite:///{tmp_path}/store/m.db")
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_no_other_module_imports_mlflow() -> None:
    code = ("import sys, lnexp.cli, lnexp.report, lnexp.export.mlflow; "
            "print(sorted(m for m in ('mlflow', 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "mlflow" not in out


# --------------------------------------------------------------------------- a real store

@pytest.fixture(scope="module")
def store(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, Any]:
    """Every kind of folder exported once into a fresh sqlite store, from another cwd."""
    import os

    root = tmp_path_factory.mktemp("mlflow")
    cwd = root / "cwd"
    cwd.mkdir()
    uri = ex.tracking_uri(None, root / "out", {})
    old = Path.cwd()
    os.chdir(cwd)
    try:
        results = ex.export([folders[k] for k in ("run", "train", "compare", "sweep")], uri,
                            experiment="lnexp-test")
    finally:
        os.chdir(old)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("lnexp-test")
    return {"uri": uri, "root": root, "cwd": cwd, "results": results, "client": client,
            "exp": exp}


def _runs(store: dict[str, Any]) -> list[Any]:
    return store["client"].search_runs([store["exp"].experiment_id], max_results=1000)


@pytest.mark.slow
def test_a_run_becomes_an_mlflow_run_with_params_metrics_and_artifacts(
        store: dict[str, Any], folders: dict[str, Path]) -> None:
    client, result = store["client"], store["results"][0]
    assert result.action == "created"
    run = client.get_run(result.mlflow_run_id)
    doc = json.loads((folders["run"] / "metrics.json").read_text())
    assert run.info.status == "FINISHED" and run.info.run_name == "default (ln)"
    assert run.data.tags["lnexp.run_id"] == f"default/{folders['run'].name}"
    assert run.data.tags["lnexp.expectations"] == "1 of 2 failed"
    assert run.data.params["model.norm"] == "ln"
    post = doc["stages"]["post_norm"]["per_sample"]["summary"]["var"]
    assert run.data.metrics["post_norm.per_sample.var.spread"] == pytest.approx(
        post["max"] - post["min"], rel=1e-12)
    names = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"metrics.json", "config.yaml", "stats.csv", "env.json", "report.html",
            "figures"} <= names
    figures = {a.path for a in client.list_artifacts(result.mlflow_run_id, "figures")}
    assert figures == {"figures/overview.png", "figures/heatmap.png"}
    local = Path(client.download_artifacts(result.mlflow_run_id, "metrics.json",
                                           str(store["root"])))
    assert json.loads(local.read_text()) == doc
    # Artifacts sit next to the database, not in ./mlruns of the folder it ran from.
    assert store["exp"].artifact_location == (store["root"] / "out" / "mlartifacts").as_uri()
    assert list(store["cwd"].iterdir()) == []


@pytest.mark.slow
def test_history_becomes_step_metrics_per_block_lists_stay_in_the_artifact(
        store: dict[str, Any]) -> None:
    client, result = store["client"], store["results"][1]
    loss = client.get_metric_history(result.mlflow_run_id, "loss")
    assert [m.step for m in loss] == list(range(1, 21))
    evals = client.get_metric_history(result.mlflow_run_id, "heldout_acc_eval_mode")
    assert [m.step for m in evals] == [0, 10, 20]
    assert client.get_metric_history(result.mlflow_run_id, "layers.grad_norm") == []
    metrics = client.get_run(result.mlflow_run_id).data.metrics
    assert metrics["layers.grad_norm_first_over_last.mean"] > 0  # the lnexp name of the headline


@pytest.mark.slow
def test_compare_and_sweep_are_parents_of_nested_runs(store: dict[str, Any]) -> None:
    client = store["client"]
    cmp, sweep = store["results"][2], store["results"][3]
    assert [c.folder.name for c in cmp.children] == ["bn", "ln", "none"]
    assert len(sweep.children) == 8
    for parent in (cmp, sweep):
        assert client.get_run(parent.mlflow_run_id).data.tags["lnexp.kind"] == parent.kind
        for child in parent.children:
            tags = client.get_run(child.mlflow_run_id).data.tags
            assert tags["mlflow.parentRunId"] == parent.mlflow_run_id
    statuses = sorted(client.get_run(c.mlflow_run_id).info.status for c in sweep.children)
    assert statuses == ["FAILED"] * 2 + ["FINISHED"] * 6
    params = client.get_run(sweep.mlflow_run_id).data.params
    assert json.loads(params["sweep.grid.model.norm"]) == ["bn", "ln"]
    assert client.get_run(sweep.mlflow_run_id).data.metrics["counts.failed"] == 2


@pytest.mark.slow
def test_runs_carry_mlflows_system_tags(store: dict[str, Any], folders: dict[str, Path]) -> None:
    """What the MLflow run page shows as Created by, Source, Git commit and Description."""
    import getpass

    client = store["client"]
    env = json.loads((folders["run"] / "env.json").read_text())
    info = json.loads((folders["run"] / "run.json").read_text())
    tags = client.get_run(store["results"][0].mlflow_run_id).data.tags
    assert tags["mlflow.user"] == getpass.getuser()
    assert tags["mlflow.source.type"] == "LOCAL"
    # the command recorded in run.json (in-process here, so pytest's own argv)
    assert tags["lnexp.command"] == shlex.join(["lnexp", *info["argv"][1:]])
    assert describe.source({"argv": ["lnexp", "run", "configs/default.yaml", "-o", "/tmp/x"]},
                           {}) == "lnexp run configs/default.yaml"
    assert describe.source({"argv": ["lnexp", "compare", "bn", "--config", "c/x.yaml"]},
                           {}) == "lnexp compare c/x.yaml"
    assert env.get("git_commit") and tags["mlflow.source.git.commit"] == env["git_commit"]
    note = tags["mlflow.note.content"].split("\n\n")
    assert "LayerNorm (ln): standardizes each sample across its features (dim 1)" in note
    assert "Expectations: 1 of 2 failed." in note
    for parent in store["results"][2:]:  # compare and sweep (the sweep: its first trial's env)
        ptags = client.get_run(parent.mlflow_run_id).data.tags
        pinfo = json.loads((parent.folder / "run.json").read_text())
        assert ptags["lnexp.command"] == shlex.join(["lnexp", *pinfo["argv"][1:]])
        assert ptags["mlflow.source.git.commit"] == env["git_commit"]
        assert ptags["mlflow.note.content"]


@pytest.mark.slow
def test_one_metric_naming_scheme_for_runs_norms_and_trials(store: dict[str, Any],
                                                             folders: dict[str, Path]) -> None:
    client = store["client"]
    sweep = json.loads((folders["sweep"] / "sweep.json").read_text())
    allowed = {*registry.HEADLINE_METRICS, *registry.METRIC_TITLES, *sweep["metrics"],
               "expectations.passed", "expectations.failed"}
    runs = [store["results"][0], *store["results"][2].children, *store["results"][3].children]
    for result in runs:
        metrics = client.get_run(result.mlflow_run_id).data.metrics
        assert set(metrics) <= allowed, set(metrics) - allowed
    done = [c for c in store["results"][3].children
            if client.get_run(c.mlflow_run_id).info.status == "FINISHED"]
    for child in done:
        assert set(sweep["metrics"]) <= set(client.get_run(child.mlflow_run_id).data.metrics)
    bn = client.get_run(store["results"][2].children[0].mlflow_run_id).data.metrics
    doc = json.loads((folders["compare"] / "bn" / "metrics.json").read_text())
    assert bn["post_norm.per_feature.var.spread"] == metric_value(
        doc, "post_norm.per_feature.var.spread")


@pytest.mark.slow
def test_parents_params_children_names_and_durations(store: dict[str, Any],
                                                     folders: dict[str, Path]) -> None:
    client = store["client"]
    cmp, sweep = store["results"][2], store["results"][3]
    cparams = client.get_run(cmp.mlflow_run_id).data.params
    assert "model.norm" not in cparams and cparams["compare.norms"] == "bn,ln,none"
    assert cparams["model.depth"] == "3"  # what every norm shares stays
    sparams = client.get_run(sweep.mlflow_run_id).data.params
    assert not {"model.norm", "data.n_samples", "seed"} & set(sparams)
    assert json.loads(sparams["sweep.grid.seed"]) == [0, 1]
    assert client.get_run(cmp.mlflow_run_id).info.run_name == "default compare: bn, ln, none"
    names = [client.get_run(c.mlflow_run_id).info.run_name for c in cmp.children]
    assert names == ["bn", "ln", "none"]
    stored = {t["run_dir"]: t for t in json.loads((folders["sweep"] / "sweep.json").read_text())
              ["trials"]}
    names = [client.get_run(c.mlflow_run_id).info.run_name for c in sweep.children]
    assert names == [f"{n} n={k} seed={s}" for n in ("bn", "ln") for k in (1, 4) for s in (0, 1)]
    for child in sweep.children:
        info = client.get_run(child.mlflow_run_id).info
        seconds = stored[child.folder.name]["seconds"]
        assert info.end_time - info.start_time == round(seconds * 1000), (info, seconds)
    train = client.list_artifacts(store["results"][1].mlflow_run_id)
    assert "history.csv" in {a.path for a in train}
    page = Path(client.download_artifacts(sweep.mlflow_run_id, "report.html", str(store["root"])))
    assert "lnexp sweep · default" in page.read_text(encoding="utf-8")


@pytest.mark.slow
def test_re_export_is_idempotent_and_a_changed_status_replaces_the_run(
        store: dict[str, Any], folders: dict[str, Path], tmp_path: Path) -> None:
    before = len(_runs(store))
    again = ex.export([folders["run"], folders["sweep"]], store["uri"], experiment="lnexp-test")
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    assert {c.action for c in again[1].children} == {"unchanged"}
    assert again[0].mlflow_run_id == store["results"][0].mlflow_run_id
    assert len(_runs(store)) == before
    # The same run (same id), now interrupted: its MLflow run is replaced, not duplicated.
    moved = tmp_path / "default" / folders["run"].name
    import shutil

    shutil.copytree(folders["run"], moved)
    info = json.loads((moved / "run.json").read_text())
    (moved / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    (changed,) = ex.export([moved], store["uri"], experiment="lnexp-test")
    assert changed.action == "replaced" and changed.lnexp_id == again[0].lnexp_id
    assert store["client"].get_run(changed.mlflow_run_id).info.status == "KILLED"
    assert store["client"].get_run(again[0].mlflow_run_id).info.lifecycle_stage == "deleted"
    assert len(_runs(store)) == before


# --------------------------------------------------------------------------- the command

def test_the_command_refuses_a_folder_that_is_not_lnexps(invoke, tmp_path: Path) -> None:
    res = invoke("export", "mlflow", str(tmp_path), "--tracking-uri",
                 f"sqlite:///{tmp_path / 'm.db'}")
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert not (tmp_path / "m.db").exists()


@pytest.mark.slow
def test_the_command_exports_again_as_unchanged(invoke, store: dict[str, Any],
                                                folders: dict[str, Path]) -> None:
    args = ("export", "mlflow", str(folders["run"]), str(folders["sweep"]),
            "--tracking-uri", store["uri"], "--experiment", "lnexp-test")
    first = invoke(*args, "--json")  # the run may have been replaced by another test
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["kind"] == "export" and doc["tracking_uri"] == store["uri"]
    assert doc["runs"][1]["action"] == "unchanged"
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    ids = [r["mlflow_run_id"] for r in doc["runs"]]
    assert again.stdout.splitlines() == [
        f"unchanged: {kind} {folders[kind]} -> MLflow run {i}{nested}"
        for kind, i, nested in zip(("run", "sweep"), ids,
                                   ("", f" ({len(doc['runs'][1]['children'])} nested runs)"),
                                   strict=True)]


def test_children_named_by_a_hand_edited_file_never_lead_outside_the_folder(
        tmp_path: Path) -> None:
    """A comparison.json whose run_dir climbs, is absolute, empty or a symlink: only the
    real child folder is exported (the others would log files from elsewhere into MLflow)."""
    folder = tmp_path / "cmp"
    outside = tmp_path / "outside"
    for d in (folder / "ok", outside):
        d.mkdir(parents=True)
        (d / "run.json").write_text("{}")
    (folder / "link").symlink_to(outside)
    names = ["../outside", str(outside), "", ".", "link", "ok", "a/../../outside"]
    (folder / "comparison.json").write_text(json.dumps(
        {"norms": [{"norm": "ln", "run_dir": n} for n in names]}))
    assert ex._children(folder, "compare") == [folder / "ok"]


# --------------------------------------------------------------------------- the MLflow UI

def _chromium(cmd: list[str], timeout: float = 420) -> str:
    """Run Chromium (the MLflow UI's JavaScript takes minutes to load on a loaded 2-core
    machine); its whole process group is killed if it hangs."""
    import os
    import signal

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-2000:]
    return out


@pytest.mark.slow
def test_the_mlflow_ui_run_page_shows_user_source_commit_and_description(
        store: dict[str, Any], folders: dict[str, Path], tmp_path: Path) -> None:
    """The real `mlflow server` on a free loopback port, the run page rendered by headless
    Chromium (screenshot kept beside the test's files, DOM read back): Created by, Source,
    the git commit and the description are the folder's. The server is stopped by its pid."""
    import getpass
    import os
    import re
    import signal
    import socket
    import time
    import urllib.request

    from tests.test_report_browser import _browser

    browser = _browser()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
         store["uri"], "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"), env=env,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core machine took 81 s
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not answer in 300 s"
            time.sleep(1)
        run_id = store["results"][0].mlflow_run_id
        url = f"{base}/#/experiments/{store['exp'].experiment_id}/runs/{run_id}"
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                  f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400",
                  "--virtual-time-budget=30000"]
        dom = _chromium([*common, "--dump-dom", url])
        shot = tmp_path / "mlflow-run-page.png"
        _chromium([*common, "--hide-scrollbars", f"--screenshot={shot}", url])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    commit = json.loads((folders["run"] / "env.json").read_text())["git_commit"]
    config = json.loads((folders["run"] / "run.json").read_text())["argv"]
    assert f"Created by {getpass.getuser()}" in text, text[:3000]
    source = describe.source({"argv": config}, {}).rsplit("/", 1)[-1]
    assert re.search(rf"Source {re.escape(source)} {commit[:7]}", text), text[:3000]
    assert "Description" in text and "Expectations: 1 of 2 failed." in text
    assert "LayerNorm (ln): standardizes each sample across its features (dim 1)" in text
    from tests.test_report_browser import screenshot_stats

    assert screenshot_stats(shot)[0] > 0.02
