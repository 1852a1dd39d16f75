"""Arguments and options shared by commands, as `Annotated` aliases (keeps each command's
signature short), and loading the config a command names."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lnexp import norms, registry

if TYPE_CHECKING:
    from lnexp.config import Config


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file or a preset name (lnexp config "
                                                "list), e.g. configs/default.yaml or tutorial.",
                                           metavar="CONFIG", show_default=False)]
OverridesArg = Annotated[list[str] | None, typer.Argument(
    metavar="KEY=VALUE", show_default=False,
    help="Config overrides as Hydra users type them, e.g. model.norm=bn seed=3; the same as "
         "--set. Quote text YAML would read otherwise: 'name=\"123\"'.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key; VALUE is read as YAML. Repeatable: --set model.norm=bn "
         "--set seed=3.")]
CompareSetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key for every norm; VALUE is read as YAML. Repeatable: --set "
         "data.n_samples=8 --set model.depth=3.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print only a JSON document (with schema_version) to stdout; messages go "
                   "to stderr.")]
ExpectOpt = Annotated[list[str] | None, typer.Option(
    "--expect", metavar="'METRIC.REDUCER OP VALUE'",
    help="Add an expectation, e.g. --expect 'post_norm.per_sample.mean.abs_max <= 1e-6' or "
         "'post_norm.per_sample.var.mean approx 1 tol 1e-3'. OP: <= >= < > ~= (or le ge lt gt "
         "approx); REDUCER: abs_max min max mean spread. Repeatable; any failure exits 1.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only the run folder; no progress.")]
OutOpt = Annotated[Path | None, typer.Option("--output-dir", "-o", metavar="DIR",
                                             help="Parent folder of run folders (output.dir).")]


def _overrides(sets: list[str] | None, positional: list[str] | None) -> list[str]:
    """KEY=VALUE arguments after the config, then --set items (later wins)."""
    from lnexp import overrides

    return [*overrides.positional(list(positional or [])), *(sets or [])]


def _load(config: Path | None, sets: list[str] | None, output_dir: Path | None = None,
          expects: list[str] | None = None, positional: list[str] | None = None) -> Config:
    """The validated config from a file, or from the built-in defaults when `config` is
    None."""
    from lnexp import overrides, presets
    from lnexp.config import from_mapping, load_config
    from lnexp.errors import ConfigError

    items = _overrides(sets, positional)
    if output_dir is not None:
        items.append(f"output.dir={json.dumps(str(output_dir))}")
    try:
        if config is None:
            return from_mapping({}, items, source=BUILTIN_CONFIG,
                                expectations=list(expects or []))
        return load_config(presets.resolve(config), items, list(expects or []))
    except ConfigError as exc:
        raise ConfigError(overrides.annotate(exc.problems, list(sets or []),
                                             list(positional or []))) from None


NamesArg = Annotated[list[str] | None, typer.Argument(
    metavar="NORM|KEY=VALUE", show_default=False,
    help="Norms to compare, in this order (default: " + " ".join(norms.COMPARE_DEFAULT)
         + ", those defined on the config's data.layout): " + " ".join(norms.names())
         + ", or a user norm file.py:Name / package.module:Name; "
         "KEY=VALUE items are config overrides, as --set.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", metavar="FILE", show_default=False,
    help="YAML config file or preset name; its model.norm is ignored. Default: the built-in "
         "defaults (the tutorial's experiment, equal to configs/default.yaml), from any "
         "folder.")]
# What compare runs without --config: the schema's defaults, which equal configs/default.yaml
# (tests/test_config.py checks it), so compare works outside the repository too.
BUILTIN_CONFIG = "<built-in defaults>"


GridOpt = Annotated[list[str] | None, typer.Option(
    "--grid", metavar="KEY=VALUES",
    help="Sweep a config key: comma list (read as YAML) or range a:b[:step], e.g. --grid "
         "model.norm=bn,ln,rms --grid seed=0:5 --grid data.n_samples=2,8,32. Repeatable; "
         "trials are the product. Replaces the same key in the config's sweep: block.")]
MetricOpt = Annotated[list[str] | None, typer.Option(
    "--metric", metavar="METRIC.REDUCER",
    help="A metric to aggregate, as in expectations, e.g. post_norm.per_sample.var.spread. "
         "Repeatable; default: post_norm.per_feature.var.spread, post_norm.per_sample.var."
         "spread, post_norm.per_sample.mean.abs_max.")]


ExecutorKind = enum.Enum("ExecutorKind", {k: k for k in registry.EXECUTORS},  # type: ignore[misc]
                         type=str)


RunKind = enum.Enum("RunKind", {k: k for k in registry.RUN_KINDS}, type=str)  # type: ignore[misc]
RunStatus = enum.Enum("RunStatus", {k: k for k in registry.RUN_STATUSES},  # type: ignore[misc]
                      type=str)


ModelArg = Annotated[list[str], typer.Argument(
    metavar="MODEL",
    help="minilm, smollm2, gemma3, mobilenet_v2, efficientnet_lite0, crepe_tiny (packaged models, "
         "extra lnexp[models]; the GGUF language models are cached after their first load), "
         "path/to/file.py:factory, package.module:factory, or a local Hugging Face model folder; "
         "several models: side by side.", show_default=False)]


RootOpt = Annotated[Path, typer.Option("--output-dir", "-o", metavar="DIR",
                                       help="The output folder to read.")]

