"""`lnexp report` and `lnexp export mlflow`: read result folders, write elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from lnexp.cli.base import (
    _emit,
    _write,
    app,
    guarded,
)
from lnexp.cli.options import (
    JsonOpt,
    RootOpt,
)


@app.command("report", short_help="Write one self-contained HTML page for a result folder.")
@guarded
def report_cmd(folder: Annotated[Path, typer.Argument(
               metavar="FOLDER", show_default=False,
               help="A run, compare, sweep or inspect folder, e.g. "
                    "outputs/default/<timestamp>-<id>.")],
               output: Annotated[Path | None, typer.Option(
                   "--output", "-o", metavar="FILE",
                   help="Where to write the page (default: FOLDER/report.html).")] = None,
               markdown: Annotated[bool, typer.Option(
                   "--markdown", help="Print the tables as Markdown to stdout instead (for a "
                                      "CI job summary; no images).")] = False) -> None:
    """Write one HTML page for a run, compare, sweep or inspect folder, e.g. `lnexp report
    outputs/default/<timestamp>-<id>`: what the config says it shows, the verdict, tables,
    expectations, figures (embedded, each opens full size), the resolved config and the
    environment. For a compare or sweep it also writes each norm's or trial's page
    (CHILD/report.html) and links to it.

    Each page is self-contained (inline CSS and images, no JavaScript, no network), so a CI
    system can keep the folder as an artifact. Prints the path it wrote. Exit 2 when FOLDER
    is not an lnexp folder.
    """
    from lnexp import report

    doc = report.read_folder(folder)
    if markdown:
        sys.stdout.write(report.to_markdown(doc))
        return
    target = output if output is not None else folder / "report.html"
    from lnexp.errors import OutputError
    from lnexp.store.files import result_file

    if result_file(target):
        raise OutputError(f"{target}: a file lnexp wrote into a result folder; refusing to "
                          f"overwrite it with the report (give -o another file, e.g. "
                          f"{target.parent / 'report.html'})")
    typer.echo(str(write_pages(doc, target)))


def write_pages(doc: Any, target: Path) -> Path:
    """Write the page to `target` and, first, each child folder's page (CHILD/report.html)
    that it links to; returns `target`."""
    from lnexp import report

    for child in doc.children():  # the drill-down pages the parent links to
        _write(child / "report.html", report.to_html(report.read_folder(child)))
    _write(target, report.to_html(doc, page=target))
    return target



export_app = typer.Typer(help="Copy result folders into other tools.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(export_app, name="export")


@export_app.command("mlflow", short_help="Copy run, compare and sweep folders into MLflow.")
@guarded
def export_mlflow_cmd(paths: Annotated[list[Path], typer.Argument(
                      metavar="FOLDER", show_default=False,
                      help="Run, compare or sweep folders.")],
                      tracking_uri: Annotated[str | None, typer.Option(
                          "--tracking-uri", metavar="URI",
                          help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                               "sqlite:///OUTPUT_DIR/mlflow.db).")] = None,
                      experiment: Annotated[str, typer.Option(
                          "--experiment", metavar="NAME",
                          help="MLflow experiment to log into.")] = "lnexp",
                      output_dir: RootOpt = Path("outputs"), json_: JsonOpt = False) -> None:
    """Log each folder as an MLflow run, e.g. `lnexp export mlflow outputs/default/<run>`:
    the config as params, its metrics, history.csv as step metrics, figures and metrics.json
    as artifacts; a compare or sweep becomes a parent run with nested children.

    Exporting again updates the same runs (tagged with the lnexp run id). Needs the extra:
    pip install 'lnexp[mlflow]'. Exit 2 when MLflow is missing or a folder is not lnexp's.
    """
    from lnexp.export import mlflow

    uri = mlflow.tracking_uri(tracking_uri, output_dir)
    exported = mlflow.export(list(paths), uri, experiment)
    if json_:
        _emit({"kind": "export", "tracking_uri": uri, "experiment": experiment,
               "runs": [e.as_dict() for e in exported]})
        return
    for e in exported:
        nested = f" ({len(e.children)} nested runs)" if e.children else ""
        typer.echo(f"{e.action}: {e.kind} {e.folder} -> MLflow run {e.mlflow_run_id}{nested}")
    typer.echo(f"tracking URI: {uri} (experiment {experiment})", err=True)

