"""Every norm side by side on the same inputs and the same Linear weights. No I/O here.

How "the same" is guaranteed: each norm gets its own config, built from the base config plus
the one override `model.norm=<name>` - exactly what `lnexp run CONFIG --set model.norm=<name>`
builds - and runs through `experiment.run`, which re-seeds (`torch.manual_seed(seed)`), builds
the model and then draws the data. The Linear layer is built first and no norm consumes random
numbers at construction, so every norm sees bit-identical Linear weights and inputs, and each
norm's result equals that of a separate `run` (tests/test_compare.py checks both).
"""

from __future__ import annotations

from collections.abc import Callable

from lnexp import config, norms, plan
from lnexp.config import Config
from lnexp.errors import ConfigError, NormError, NotDefinedError
from lnexp.results import CompareResult, NormOutcome


def select(names: list[str] | None, layout: str = "features") -> list[str]:
    """The norms to compare, in the given order; none given means the six classic norms defined
    on the layout (norms.compare_default; instance is not defined on features)."""
    if not names:
        return norms.compare_default(layout)
    for name in names:
        norms.get(name)  # unknown names raise NormError listing the valid ones
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise NormError(f"norm {', '.join(repeated)} given more than once; "
                        f"list each norm once, e.g. lnexp compare bn ln")
    return list(names)


def norm_configs(cfg: Config, names: list[str] | None,
                 source: str = "<config>") -> dict[str, Config]:
    """One validated config per norm: `cfg` with `model.norm=<name>`.

    Every problem (e.g. `model.groups` not dividing the features, which only matters for
    `group`) is collected and raised as one ConfigError before anything runs.
    """
    raw = config.to_dict(cfg)
    out: dict[str, Config] = {}
    problems: list[str] = []
    for name in select(names, cfg.data.layout):
        try:
            out[name] = config.from_mapping(raw, [f"model.norm={name}"],
                                            source=f"{source} --set model.norm={name}")
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out


def compare(cfg: Config, names: list[str] | None = None, source: str = "<config>",
            configs: dict[str, Config] | None = None,
            update: Callable[[int, int, str], None] | None = None,
            steps: int | None = None) -> CompareResult:
    """Run every requested norm on `cfg` (or the `configs` norm_configs already built); a norm
    that is not defined for this input (bn on a batch of 1 in train mode) keeps its reason
    instead of a result, the others still run. `update(done, steps, note)` (lnexp.progress)
    hears of each norm as it ends; `steps` defaults to the number of norms."""
    from lnexp import experiment  # torch: imported only when something is computed

    outcomes: list[NormOutcome] = []
    if configs is None:
        configs = norm_configs(cfg, names, source)
    total = steps or len(configs)
    for name, norm_cfg in configs.items():
        if update is not None:
            update(len(outcomes), total, f"running {name}")
        spec = norms.resolve(name, cfg.data.layout, norm_cfg.features)
        reason = plan.not_defined_reason(norm_cfg)
        if reason:
            outcomes.append(NormOutcome(name, spec, norm_cfg, None, reason))
            continue
        try:
            result = experiment.run(norm_cfg)
        except NotDefinedError as exc:
            outcomes.append(NormOutcome(name, spec, norm_cfg, None, str(exc)))
        else:
            if result.training is not None and result.training.interrupted:
                raise KeyboardInterrupt  # training swallows Ctrl-C; compare must stop too
            outcomes.append(NormOutcome(name, spec, norm_cfg, result))
    return CompareResult(config=cfg, outcomes=outcomes)
