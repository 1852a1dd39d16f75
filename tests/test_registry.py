"""lnexp.registry: every registered name is the one models, figures, config and tables use."""

from __future__ import annotations

from typing import get_args

from lnexp import figures, registry
from lnexp.config import ModelConfig, from_mapping


def test_every_registered_figure_has_a_drawing_function() -> None:
    names = {f.name for f in (*registry.RUN_FIGURES, *registry.COMPARE_FIGURES,
                              registry.SWEEP_FIGURE)}
    assert names == set(figures.FIGURES)


def test_config_choices_come_from_the_registry() -> None:
    fields = ModelConfig.model_fields
    assert set(get_args(fields["activation"].annotation)) == set(registry.ACTIVATIONS)
    assert set(get_args(fields["placement"].annotation)) == set(registry.PLACEMENTS)


def test_activation_names_are_torch_modules() -> None:
    from torch import nn

    for cls in registry.ACTIVATIONS.values():
        assert issubclass(getattr(nn, cls), nn.Module)


def test_run_figures_follow_the_config() -> None:
    def names(raw: dict) -> list[str]:
        return [f.name for f in registry.run_figures(from_mapping(raw))]

    assert names({}) == ["overview", "heatmap"]
    assert names({"model": {"depth": 3}, "train": {}}) == ["overview", "heatmap", "layers",
                                                           "training"]
    assert names({"output": {"figures": False}}) == []
