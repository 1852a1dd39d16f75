"""lnexp from Python: the functions behind `import lnexp` (lnexp.run, lnexp.compare, ...).

Each function does what its command does and returns an outcome (lnexp.api.outcomes) instead
of printing: nothing is printed, no signal handler is installed, sys.exit is never called.
Errors are the exceptions in lnexp.errors, with the messages the CLI prints. With out_dir=None
the result folder goes into a temporary directory that lives as long as the outcome object.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnexp.api import compute
from lnexp.api.outcomes import (
    KINDS,
    CompareOutcome,
    InspectOutcome,
    Outcome,
    RunOutcome,
    SweepOutcome,
)
from lnexp.errors import ConfigError, RunFolderError

if TYPE_CHECKING:
    from lnexp.config import Config

Progress = Callable[[int, int, str], None]
BUILTIN = "<built-in defaults>"


def _items(overrides: Sequence[str], keys: Mapping[str, Any]) -> list[str]:
    """KEY=VALUE strings, then keyword keys (model__norm="bn" is model.norm=bn)."""
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError([f"{item!r}: an override is a 'KEY=VALUE' string, e.g. "
                               f"'model.norm=bn'"])
    return [*overrides, *(f"{k.replace('__', '.')}={json.dumps(v)}" for k, v in keys.items())]


def load_config(path: Any = None, *overrides: str, **keys: Any) -> Config:
    """The validated config: from a YAML file, a preset name (`lnexp config list`), a
    mapping, a Config, or the built-in tutorial defaults (path=None); then the KEY=VALUE
    overrides and keyword keys. ConfigError lists every problem, one line each.

    >>> import lnexp
    >>> cfg = lnexp.load_config("tutorial", "model.norm=bn", seed=3)
    >>> (cfg.model.norm, cfg.seed)
    ('bn', 3)
    """
    from lnexp import presets
    from lnexp.config import Config, from_mapping, to_dict
    from lnexp.config import load_config as load_file

    items = _items(overrides, keys)
    if path is None:
        return from_mapping({}, items, source=BUILTIN)
    if isinstance(path, Config):
        return from_mapping(to_dict(path), items, source="<Config>")
    if isinstance(path, Mapping):
        return from_mapping(dict(path), items, source="<mapping>")
    return load_file(presets.resolve(path), items)


def _source(config: Any) -> str:
    from lnexp import presets

    if config is None:
        return BUILTIN
    return str(presets.resolve(config)) if isinstance(config, (str, Path)) else "<config>"


def _out(out_dir: str | Path | None) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    if out_dir is not None:
        return Path(out_dir), None
    keep = tempfile.TemporaryDirectory(prefix="lnexp-")
    return Path(keep.name), keep


def _steps(progress: Progress | None) -> Callable[[], Any] | None:
    if progress is None:
        return None
    import contextlib

    return lambda: contextlib.nullcontext(progress)


def run(config: Any = None, *overrides: str, out_dir: str | Path | None = None,
        progress: Progress | None = None) -> RunOutcome:
    """Run one experiment, as `lnexp run CONFIG KEY=VALUE...`: `config` is a path, a preset
    name, a Config, a mapping or None (the tutorial). Returns the run folder's outcome.

    >>> import lnexp
    >>> out = lnexp.run("tutorial", "data.n_samples=8")
    >>> out.metrics["norm"]["name"], sorted(out.figures)[:1]
    ('ln', ['heatmap'])
    """
    root, keep = _out(out_dir)
    cfg = load_config(config, *overrides, f"output.dir={json.dumps(str(root))}")
    done = compute.run(cfg, _source(config), ["lnexp.run()"], _steps(progress))
    return RunOutcome(done.run_dir, live=done, keep=keep)


def compare(norms: Sequence[str] | None = None, config: Any = None, *overrides: str,
            out_dir: str | Path | None = None, progress: Progress | None = None
            ) -> CompareOutcome:
    """Run several norms on the same inputs and weights, as `lnexp compare NORM... --config
    CONFIG` (norms=None: the classic six, bn ln rms group instance none, defined on the
    config's data.layout).

    >>> import lnexp
    >>> out = lnexp.compare(["ln", "rms"], None, "data.n_samples=8")
    >>> [row["norm"] for row in out.table()]
    ['ln', 'rms']
    """
    root, keep = _out(out_dir)
    cfg = load_config(config, *overrides, f"output.dir={json.dumps(str(root))}")
    done = compute.compare(cfg, list(norms) if norms else None, _source(config),
                           ["lnexp.compare()"], _steps(progress))
    return CompareOutcome(done.compare_dir, live=done, keep=keep)


def _grid(grid: Mapping[str, Sequence[Any]] | None) -> list[str]:
    """{"model.norm": ["bn", "ln"]} -> ["model.norm=\\"bn\\",\\"ln\\""] (--grid items)."""
    return [f"{key}={','.join(json.dumps(v) for v in values)}"
            for key, values in (grid or {}).items()]


def sweep(config: Any, grid: Mapping[str, Sequence[Any]] | None = None,
          seeds: int | None = None, jobs: int | None = None, executor: str = "local",
          out_dir: str | Path | None = None, *, overrides: Sequence[str] = (),
          metrics: Sequence[str] = (), fail_fast: bool = False, figure: bool = True
          ) -> SweepOutcome:
    """Run a grid of trials on worker processes and aggregate over seeds, as `lnexp sweep
    CONFIG --grid KEY=VALUES --seeds N`; `config` is a path or a preset name (its sweep:
    block adds axes), `grid` maps a key to its values.

    >>> import lnexp
    >>> out = lnexp.sweep("tutorial", {"model.norm": ["ln", "rms"]}, seeds=2, jobs=2,
    ...                   overrides=["data.n_samples=8"])
    >>> out.status, len(out.table())
    ('completed', 2)
    """
    from lnexp import presets

    if not isinstance(config, (str, Path)):
        raise ConfigError(["lnexp.sweep: config is a YAML path or a preset name"])
    root, keep = _out(out_dir)
    plan = compute.plan_sweep(presets.resolve(config), _grid(grid), list(overrides), seeds,
                              list(metrics), None, root, jobs, None, executor)
    done = compute.sweep(plan, ["lnexp.sweep()"], fail_fast=fail_fast, figure=figure)
    return SweepOutcome(done.sweep_dir, live=done, keep=keep)


def inspect(model: str, text: str | Sequence[str] | None = None, random: str | None = None,
            out_dir: str | Path | None = None, *, text_file: str | Path | None = None,
            tensor: str | Path | None = None, digits: bool = False, limit: int | None = None,
            batch_size: int = 32, top_k: int = 5, seed: int = 0, figures: bool = True,
            progress: Progress | None = None) -> InspectOutcome:
    """Measure what the norm layers do inside a model, as `lnexp inspect MODEL --text ...`:
    `model` is minilm (extra lnexp[models]), path/to/file.py:factory, package.module:factory
    or a local Hugging Face folder.

    >>> import lnexp
    >>> out = lnexp.inspect("minilm", text=["LayerNorm keeps each token's scale."])
    >>> len(out.metrics["layers"]) > 0
    True
    """
    from lnexp.inspect import InputSpec, InspectOptions

    root, keep = _out(out_dir)
    texts = (text,) if isinstance(text, str) else tuple(text or ())
    spec = InputSpec(texts=texts, text_file=Path(text_file) if text_file else None,
                     random=random, tensor_file=Path(tensor) if tensor else None,
                     digits=digits, limit=limit, seed=seed)
    options = InspectOptions(batch_size=batch_size, top_k=top_k)
    _, run_dir, _, _ = compute.inspect(model, spec, options, root, ["lnexp.inspect()"], [],
                                       figures, _steps(progress))
    return InspectOutcome(run_dir, keep=keep)


def load(folder: str | Path) -> Outcome:
    """Read a run, compare, sweep or inspect folder back (RunFolderError if it is none).

    >>> import lnexp
    >>> out = lnexp.run(None, "data.n_samples=8")
    >>> lnexp.load(out.folder).metrics == out.metrics
    True
    """
    path = Path(folder)
    if path.is_file():
        path = path.parent
    try:
        kind = json.loads((path / "run.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind not in KINDS:
        kind = next((k for k, c in KINDS.items() if (path / c.document).is_file()), None)
    if kind is None:
        raise RunFolderError(f"{path}: not an lnexp folder (no run.json, metrics.json, "
                             f"comparison.json, sweep.json or inspect.json)")
    return KINDS[kind](path)


def runs(root: str | Path | None = None, kind: str | None = None, status: str | None = None,
         norm: str | None = None, nested: bool = False) -> list[dict[str, Any]]:
    """The result folders under `root` (default ./outputs), newest first, as `lnexp runs
    --json` lists them; open one with lnexp.load(row["path"]).

    >>> import lnexp
    >>> out = lnexp.run(None, "data.n_samples=8")
    >>> [r["kind"] for r in lnexp.runs(out.folder.parent.parent)]
    ['run']
    """
    from lnexp import history

    records = history.scan(Path(root) if root is not None else Path("outputs"), nested=nested)
    return [r.as_dict() for r in history.select(records, norm=norm, status=status, kind=kind)]


__all__ = ["CompareOutcome", "ConfigError", "InspectOutcome", "Outcome", "RunOutcome",
           "SweepOutcome", "compare", "inspect", "load", "load_config", "run", "runs", "sweep"]
