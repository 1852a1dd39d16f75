"""`lnexp inspect`: what the normalization layers do inside a real model.

`run_inspect(model_spec, input_spec, options, progress)` is the one call the CLI makes; it
loads the model, resolves the inputs and measures (lnexp.inspect.core). `write_folder` writes a
run folder. Nothing here imports torch until called, so `lnexp --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lnexp.inspect.inputs import InputSpec
from lnexp.inspect.options import InspectOptions

if TYPE_CHECKING:
    from lnexp.inspect.outcome import InspectOutcome

__all__ = ["InputSpec", "InspectOptions", "run_inspect"]


def run_inspect(model_spec: str, input_spec: InputSpec, options: InspectOptions,
                progress: Callable[[int, int], None] | None = None) -> InspectOutcome:
    """Load MODEL, feed it the inputs, and measure every norm layer (no files, no prints)."""
    from lnexp.inspect import core, inputs, models

    if input_spec.text_file is not None:  # a FIFO or device is refused before a model loads
        inputs.check_text_file(input_spec.text_file)
    loaded = models.load(model_spec, options.model_cache)
    source = inputs.resolve(input_spec, loaded.tokenizer, model_spec)
    return core.measure(loaded, source, options, progress)
