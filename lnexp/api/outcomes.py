"""What the Python API returns: one object per result folder, read from the folder's files.

An outcome is a view of a folder (run, compare, sweep or inspect), the same whether it was just
computed or read back with `lnexp.load`: `.metrics` is the document lnexp wrote (metrics.json,
comparison.json, sweep.json or inspect.json), `.table()` its CSV as rows, `.figures` the PNGs,
`.figure(name)` a matplotlib Figure, and `_repr_html_` the `lnexp report` page, so a notebook
cell shows the result. A folder made in a temporary directory (out_dir=None) lives as long as
its outcome object.
"""

from __future__ import annotations

import csv
import json
import tempfile
from functools import cached_property
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lnexp.config import Config


def _cell(text: str) -> Any:
    """A CSV cell as a number when it reads as one ('' stays '')."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class Outcome:
    """A result folder: what every outcome has (`kind` run, compare, sweep or inspect)."""

    kind: ClassVar[str] = ""
    document: ClassVar[str] = ""  # the folder's main JSON document
    csv_file: ClassVar[str] = ""  # what .table() reads
    figure_specs: ClassVar[str | None] = None  # registry function: the figures of a live result

    def __init__(self, folder: str | Path, *, live: Any = None,
                 keep: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self.folder = Path(folder)
        self._live = live  # lnexp.core's outcome when just computed (figures drawn from it)
        self._keep = keep  # the temporary output folder, removed with this object

    def __repr__(self) -> str:
        return f"<lnexp {type(self).__name__} {self.folder}: {self.verdict}>"

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """The folder's JSON document as lnexp wrote it."""
        return dict(json.loads((self.folder / self.document).read_text(encoding="utf-8")))

    @property
    def config(self) -> Config | dict[str, Any]:
        """The resolved config: a validated Config (run, compare), else the stored mapping."""
        from lnexp.config import load_config

        return load_config(self.folder / "config.yaml")

    @property
    def verdict(self) -> str:
        """The one-line result, as the report's first line."""
        from lnexp import report

        head = report.read_folder(self.folder).headline
        return head[0].text if head else ""

    @property
    def figures(self) -> dict[str, Path]:
        """name -> PNG path, for every figure in the folder (figures/*.png and *.png)."""
        found = sorted(self.folder.glob("*.png")) + sorted(self.folder.glob("figures/*.png"))
        return {p.stem: p for p in found}

    def figure(self, name: str) -> Figure:
        """A matplotlib Figure: drawn from the result when it was just computed and the figure
        is one lnexp draws, else the saved PNG shown at its own size."""
        drawn = self._draw(name)
        if drawn is not None:
            return drawn
        if name not in self.figures:
            raise KeyError(f"{name!r}: no such figure in {self.folder} (have: "
                           f"{', '.join(self.figures) or 'none'})")
        from matplotlib.figure import Figure
        from matplotlib.image import imread

        image = imread(self.figures[name])
        dpi = 100
        fig = Figure(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(image)
        ax.set_axis_off()
        return fig

    def _draw(self, name: str) -> Figure | None:
        """Draw `name` from the live result when this outcome was just computed and its kind
        names the registry's list of figures (`figure_specs`); None otherwise."""
        if self._live is None or self.figure_specs is None:
            return None
        from lnexp import registry

        result = self._live.result
        return _draw_from(result, getattr(registry, self.figure_specs)(result.config), name)

    def table(self) -> list[dict[str, Any]]:
        """The key table as rows (ready for pandas.DataFrame(...)), from the folder's CSV."""
        return _rows(self.folder / self.csv_file)

    def html(self) -> str:
        """The self-contained `lnexp report` page of this folder."""
        from lnexp import report

        return report.to_html(report.read_folder(self.folder))

    def _repr_html_(self) -> str:
        # The page in an iframe: its stylesheet must not restyle the notebook around it.
        return (f'<iframe srcdoc="{escape(self.html(), quote=True)}" '
                f'style="width:100%;height:36rem;border:1px solid #d1d9e0"></iframe>')


def _draw_from(live: Any, specs: list[Any], name: str) -> Figure | None:
    from lnexp.figures import FIGURES

    for spec in specs:
        if name in (spec.name, Path(spec.file).stem):
            return FIGURES[spec.name](live)
    return None


class RunOutcome(Outcome):
    """One run folder (`lnexp run`)."""

    kind = "run"
    figure_specs = "run_figures"
    document = "metrics.json"
    csv_file = "stats.csv"

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return list(self.metrics.get("expectations") or [])

    @property
    def passed(self) -> bool:
        """Every expectation passed (True when there are none)."""
        return all(r["passed"] for r in self.expectations)



class CompareOutcome(Outcome):
    """A compare folder (`lnexp compare`): one run folder per norm, comparison.json."""

    kind = "compare"
    figure_specs = "compare_figures"
    document = "comparison.json"
    csv_file = "comparison.csv"

    @property
    def runs(self) -> dict[str, RunOutcome]:
        """norm -> its run folder, for every norm that was computed."""
        return {p.name: RunOutcome(p) for p in sorted(self.folder.iterdir())
                if (p / "metrics.json").is_file()}



class SweepOutcome(Outcome):
    """A sweep folder (`lnexp sweep`): sweep.json, summary.csv, one run folder per trial."""

    kind = "sweep"
    document = "sweep.json"
    csv_file = "summary.csv"

    @property
    def config(self) -> dict[str, Any]:
        """The sweep definition as stored in sweep.json (base config, axes, seeds)."""
        return dict(self.metrics.get("definition") or {})

    @property
    def status(self) -> str:
        return str(self.metrics.get("status"))


class InspectOutcome(Outcome):
    """An inspect folder (`lnexp inspect`): inspect.json, layers.csv, dims.csv."""

    kind = "inspect"
    document = "inspect.json"
    csv_file = "layers.csv"

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """inspect.json, or side_by_side.json for `lnexp inspect A B ...` (whose child folders,
        one per model, load as inspect folders themselves)."""
        side = self.folder / "side_by_side.json"
        if side.is_file() and not (self.folder / self.document).is_file():
            return dict(json.loads(side.read_text(encoding="utf-8")))
        return dict(json.loads((self.folder / self.document).read_text(encoding="utf-8")))

    @property
    def side_by_side(self) -> bool:
        """A folder of `lnexp inspect A B ...` (one child folder per model)."""
        return "models" in self.metrics

    def table(self) -> list[dict[str, Any]]:
        """layers.csv; side_by_side.csv for `lnexp inspect A B ...`."""
        if self.side_by_side:
            return _rows(self.folder / "side_by_side.csv")
        return super().table()

    @property
    def models(self) -> dict[str, InspectOutcome]:
        """Side by side: model folder name -> its own inspect folder; else empty."""
        return {m["folder"]: InspectOutcome(self.folder / m["folder"])
                for m in self.metrics.get("models") or []} if self.side_by_side else {}

    @property
    def config(self) -> dict[str, Any]:
        """What was inspected: the model, the inputs and the options."""
        return {k: self.metrics.get(k) for k in ("model", "inputs", "options")
                if k in self.metrics}

    @property
    def verdict(self) -> str:
        if self.side_by_side:
            return " + ".join(m["folder"] for m in self.metrics["models"]) + ": side by side"
        model = (self.metrics.get("model") or {}).get("name", "?")
        return f"{model}: {len(self.metrics.get('layers') or [])} norm layers measured"

    def html(self) -> str:
        rows = self.table()
        head = "".join(f"<th>{escape(str(k))}</th>" for k in (rows[0] if rows else {}))
        body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in r.values())
                       + "</tr>" for r in rows)
        return (f"<!DOCTYPE html><html><body><h1>{escape(self.verdict)}</h1>"
                f"<p>{escape(str(self.folder))}</p><table>{head}{body}</table></body></html>")


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


KINDS: dict[str, type[Outcome]] = {c.kind: c for c in (RunOutcome, CompareOutcome,
                                                          SweepOutcome, InspectOutcome)}
