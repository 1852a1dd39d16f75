"""What an lnexp folder looks like on an MLflow run page: its name, MLflow's system tags, the
headline metrics and the params. Pure: reads the folder's documents, never imports mlflow.

- **Names** say what differs: a sweep trial is `rms n=256 seed=2` (its grid values), a norm of
  a compare is its norm, a run `default (ln)`; the folder's own path is the `lnexp.run_id` tag.
- **System tags** are the ones MLflow's UI shows on a run page: `mlflow.user` ("Created by",
  the user exporting, as MLflow itself sets it), `mlflow.source.name`/`type` ("Source": the
  lnexp command and config that made the folder; the whole command is `lnexp.command`),
  `mlflow.source.git.commit` (env.json's `git_commit`) and `mlflow.note.content` (the
  description: the verdict lines of `lnexp report`).
- **Metrics** are lnexp's own names, the same for a run, a compare's norm and a sweep's trial
  (`post_norm.per_sample.var.spread`, what `lnexp sweep` summarises and `lnexp runs` lists):
  the registry's headline metrics, the sweep's metrics and the registry's titled metrics that
  the run has. Everything else stays in the metrics.json artifact.
"""

from __future__ import annotations

import getpass
import json
import math
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Short labels for the keys a grid varies most (a trial's name); any other key shows its last
# part (`model.depth=20` -> `depth=20`) and the norm shows bare (`rms`).
SHORT_KEYS = {"model.norm": "", "data.n_samples": "n", "train.batch_size": "batch"}
SOURCE_TYPE = "LOCAL"  # MLflow's SourceType for a program run on a machine
MAX_TAG = 5000
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def label(value: Any) -> str:
    """A grid value as a trial's name shows it: `ln`, `256`, `0.001`, `true`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def trial_name(params: Mapping[str, Any]) -> str:
    """`rms n=256 seed=2`: what distinguishes a trial from its siblings."""
    parts = []
    for key, value in params.items():
        short = SHORT_KEYS.get(key, key.rsplit(".", 1)[-1])
        parts.append(f"{short}={label(value)}" if short else label(value))
    return " ".join(parts) or "base config"


def run_name(config: Mapping[str, Any], folder: Path) -> str:
    """A plain run: `default (ln)`."""
    norm = (config.get("model") or {}).get("norm")
    name = str(config.get("name") or folder.parent.name)
    return f"{name} ({norm})" if norm else name


def headline_metrics(doc: Mapping[str, Any], extra: tuple[str, ...] = ()) -> dict[str, float]:
    """The run's lnexp metrics under their lnexp names (finite values only)."""
    from lnexp import registry
    from lnexp.expect import metric_value

    keys = dict.fromkeys([*registry.HEADLINE_METRICS, *extra, *registry.METRIC_TITLES])
    out = {}
    for key in keys:
        try:
            value = metric_value(doc, key)
        except (ValueError, TypeError, KeyError):  # a key this lnexp does not know
            continue
        if math.isfinite(value):
            out[key] = float(value)
    results = doc.get("expectations") or []
    if results:
        out["expectations.passed"] = float(sum(bool(r.get("passed")) for r in results))
        out["expectations.failed"] = float(sum(not r.get("passed") for r in results))
    return out


def command(info: Mapping[str, Any], env: Mapping[str, Any]) -> str:
    """The lnexp command that made the folder, as a shell would take it."""
    argv = info.get("argv") or env.get("argv")
    if isinstance(argv, list) and argv:
        return shlex.join(["lnexp", *map(str, argv[1:])])
    return "lnexp"


def source(info: Mapping[str, Any], env: Mapping[str, Any]) -> str:
    """MLflow's source name: `lnexp run configs/default.yaml`, the command and the config it
    ran (the UI shows a source as a path's last part, so the options stay out: the whole
    command is the `lnexp.command` tag)."""
    argv = [str(a) for a in (info.get("argv") or env.get("argv") or [])]
    sub = next((a for a in argv[1:2] if not a.startswith("-")), "")
    config = next((a for a in argv[2:] if a.endswith((".yaml", ".yml"))), "")
    return " ".join(x for x in ("lnexp", sub, config) if x)


def description(folder: Path) -> str:
    """The verdict lines of the folder's report (Markdown: one paragraph each)."""
    from lnexp import report
    from lnexp.errors import LnexpError

    try:
        doc = report.read_folder(folder)
    except LnexpError:
        return ""
    return "\n\n".join(t.text for t in doc.headline)[:MAX_TAG]


def system_tags(folder: Path, info: Mapping[str, Any], env: Mapping[str, Any]
                ) -> dict[str, str]:
    """MLflow's own tags for the run page's "Created by", "Source", git commit and
    description."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    tags = {"mlflow.user": user, "mlflow.source.name": source(info, env)[:MAX_TAG],
            "mlflow.source.type": SOURCE_TYPE, "lnexp.command": command(info, env)[:MAX_TAG]}
    if env.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(env["git_commit"])
    note = description(folder)
    if note:
        tags["mlflow.note.content"] = note
    return tags


def without(config: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """The config without the dotted `keys` (a compare's model.norm, a sweep's grid keys)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in keys:
            continue
        inner = [k.split(".", 1)[1] for k in keys if k.startswith(f"{key}.")]
        out[key] = without(value, inner) if isinstance(value, Mapping) and inner else value
    return out


def flatten(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys and leaf values of nested mappings (lists are leaves)."""
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            yield from flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], doc


def params_of(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """The config as MLflow params: dotted keys, values as YAML would write them."""
    out = {}
    for key, value in flatten(config, prefix):
        if isinstance(value, Mapping) and not value:
            continue  # an empty section such as expect: {}
        text = (json.dumps(value) if not isinstance(value, str) else value)
        out[key] = text[:MAX_PARAM_LENGTH]
    return out
