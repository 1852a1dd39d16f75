"""What a norm is: NormSpec, shared by the registry (lnexp.norms) and user norms
(lnexp.norms.user). No torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class NormSpec:
    """What a registered norm is, and what it is expected to standardize on each layout.

    `get(name)` returns the features-layout view; `spec.on(layout)` the view for another
    layout (its title and summary say what the norm does there).
    """

    name: str
    title: str
    summary: str
    factory: Callable[..., nn.Module]
    # The statistic axis (lnexp.registry.AXES) it pins to mean 0 / var 1, per layout; a
    # layout missing here is one the norm is not defined on.
    axes: dict[str, str] = field(default_factory=dict)
    # Why it is not defined on a layout (validate refuses the config with this reason).
    undefined: dict[str, str] = field(default_factory=dict)
    # Title and summary on image and sequence layouts (title/summary are for features).
    titles: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)
    layout: str = "features"
    # A user norm (model.norm: file.py:Name, pkg.mod:Name or an lnexp.norms entry point): its
    # axes are measured (lnexp.norms.user.measure), not declared; `declared` is what the norm
    # itself claims (its `axes` attribute), checked against the measurement.
    user: bool = False
    declared: dict[str, str] = field(default_factory=dict)

    def not_defined_on(self, layout: str) -> str | None:
        """Why this norm cannot run on `layout`, or None."""
        return self.undefined.get(layout)

    def on(self, layout: str) -> NormSpec:
        """This norm as it is built on `layout` (title and summary for that layout)."""
        return replace(self, title=self.titles.get(layout, self.title),
                       summary=self.summaries.get(layout, self.summary), layout=layout)

    @property
    def mismatch(self) -> str | None:
        """A user norm whose declared axis on this layout differs from the measured one: the
        sentence saying so (the measurement is what lnexp uses), else None."""
        said = self.declared.get(self.layout)
        if said is None or said == self.standardizes_axis:
            return None
        return (f"{self.name} declares axes '{said}' on data.layout: {self.layout}, but the "
                f"measurement finds '{self.standardizes_axis}'; lnexp uses the measurement")

    @property
    def standardizes_axis(self) -> str:
        """The statistic axis it pins on its layout ('per_sample', ...) or 'neither'."""
        return self.axes.get(self.layout, "neither")

    @property
    def axis(self) -> str:
        """The same in words ('features', 'samples', 'groups', ..., 'neither')."""
        from lnexp.registry import AXIS_WORDS

        return AXIS_WORDS.get(self.standardizes_axis, "neither")


