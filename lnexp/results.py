"""What a run computed: plain dataclasses of numpy arrays, with no torch import.

The core (stats, experiment, training, compare) builds these; renderers read them. Keeping them
torch-free lets a figure worker unpickle a result while only matplotlib is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from lnexp import norms
from lnexp.config import Config
from lnexp.registry import AXES, standardizes

# An axis counts as standardized when every mean is within TOL of 0 and every biased variance
# within TOL of 1. Generous next to float32 rounding (~1e-7), tight next to what eps does to a
# variance of ~1e-2 (eps=1e-5 moves it by 1e-3).
STANDARDIZED_TOL = 1e-3


@dataclass(frozen=True)
class AxisStats:
    """Per-feature or per-sample statistics: arrays of one value per feature / sample."""

    count: int  # how many values each statistic is taken over
    mean: np.ndarray
    var: np.ndarray  # biased (/ n)
    var_unbiased: np.ndarray  # / (n - 1); NaN where n < 2
    std: np.ndarray  # sqrt(var)


@dataclass(frozen=True)
class GlobalStats:
    """Statistics over every value of the matrix at once."""

    count: int
    mean: float
    var: float
    var_unbiased: float
    std: float
    rms: float
    min: float
    max: float
    nonfinite: int  # NaN or +-Inf values (then the statistics above are NaN)


@dataclass(frozen=True)
class StageStats:
    """All statistics of one stage (input, pre_norm or post_norm): per_feature and per_sample
    always; per_token, per_instance and per_group where the layout and norm have them
    (lnexp.registry.axes)."""

    per_feature: AxisStats
    per_sample: AxisStats
    global_: GlobalStats
    extra: dict[str, AxisStats] = field(default_factory=dict)

    @property
    def axes(self) -> dict[str, AxisStats]:
        """Every axis computed, in registry.AXES order."""
        found = {"per_feature": self.per_feature, "per_sample": self.per_sample, **self.extra}
        return {a: found[a] for a in AXES if a in found}

    def axis(self, name: str) -> AxisStats:
        """One axis by name ('per_token', ...); KeyError when not computed."""
        return self.axes[name]


@dataclass(frozen=True)
class Verdict:
    """Whether an axis is centred (|mean| <= tol) and has unit biased variance (|var-1| <= tol)."""

    centred: bool
    unit_variance: bool
    mean_abs_max: float
    var_min: float
    var_max: float
    tolerance: float

    @property
    def standardized(self) -> bool:
        return self.centred and self.unit_variance


@dataclass(frozen=True)
class SampleStats:
    """One sample's values and their statistics across features."""

    values: np.ndarray
    mean: float
    var: float
    var_unbiased: float
    std: float


def verdict(axis: AxisStats, tol: float = STANDARDIZED_TOL) -> Verdict:
    """Is this axis standardized (every mean ~ 0 and every biased variance ~ 1)?"""
    with np.errstate(invalid="ignore"):
        mean_abs_max = float(np.max(np.abs(axis.mean)))
        var_min, var_max = float(np.min(axis.var)), float(np.max(axis.var))
    return Verdict(
        centred=bool(mean_abs_max <= tol),
        unit_variance=bool(abs(var_min - 1) <= tol and abs(var_max - 1) <= tol),
        mean_abs_max=mean_abs_max,
        var_min=var_min,
        var_max=var_max,
        tolerance=tol,
    )


@dataclass(frozen=True)
class Evaluation:
    """Held-out loss and accuracy (None for regression) in eval mode and in train mode."""

    step: int
    loss_eval_mode: float
    acc_eval_mode: float | None
    loss_train_mode: float
    acc_train_mode: float | None


# Per-block training diagnostics (lnexp/diagnostics.py), in the order they are reported.
DIAGNOSTIC_KEYS = ("residual_rms", "max_abs", "max_over_median", "excess_kurtosis",
                   "grad_norm", "attn_logit_max")
FIRST_MASSIVE = 100.0  # max |x| / median |x| above this counts as a massive activation


@dataclass
class TrainDiagnostics:
    """`train.log_every` diagnostics (lnexp/diagnostics.py): the steps recorded, and per key
    of DIAGNOSTIC_KEYS a (steps, blocks) list of lists."""

    blocks: list[str]
    steps: list[int] = field(default_factory=list)
    values: dict[str, list[list[float]]] = field(default_factory=dict)
    max_position: list[list[tuple[int, ...]]] = field(default_factory=list)
    threshold: float = FIRST_MASSIVE

    def recorded(self) -> list[str]:
        """The keys recorded, in DIAGNOSTIC_KEYS order."""
        return [k for k in DIAGNOSTIC_KEYS if k in self.values]

    def columns(self) -> list[str]:
        """history.csv's columns: KEY.BLOCK for every recorded key and block."""
        return [f"{k}.{b}" for k in self.recorded() for b in self.blocks]

    def row(self, step: int) -> list[float] | None:
        """The values of `columns()` at `step`, or None when the step was not recorded."""
        if step not in self.steps:
            return None
        i = self.steps.index(step)
        return [v for k in self.recorded() for v in self.values[k][i]]

    def array(self, key: str) -> np.ndarray:
        return np.asarray(self.values[key], dtype=np.float64).reshape(len(self.steps), -1)

    def first_massive(self) -> dict[str, object] | None:
        """The first recorded step at which a block's max |x| exceeds FIRST_MASSIVE x its
        median |x|: {step, block, position}, or None."""
        for i, row in enumerate(self.values.get("max_over_median", [])):
            for j, v in enumerate(row):
                if v > self.threshold:
                    return {"step": self.steps[i], "block": self.blocks[j],
                            "position": list(self.max_position[i][j])}
        return None

    def summary(self) -> dict[str, Any]:
        """Per block (arrays): the residual RMS at the first and last recorded step and their
        ratio, the max/median ratio and the kurtosis at the last step and the peak ratio, the
        largest attention logit at the last step; `first_massive_step` (None: none)."""
        rms, ratio = self.array("residual_rms"), self.array("max_over_median")
        with np.errstate(divide="ignore", invalid="ignore"):
            out: dict[str, Any] = {
                "residual_rms_first": rms[0], "residual_rms_last": rms[-1],
                "residual_rms_growth": rms[-1] / rms[0],
                "max_over_median_last": ratio[-1],
                "max_over_median_peak": np.where(np.isnan(ratio), -np.inf, ratio).max(axis=0),
                "excess_kurtosis_last": self.array("excess_kurtosis")[-1]}
        if "attn_logit_max" in self.values:
            out["attn_logit_max_last"] = self.array("attn_logit_max")[-1]
        first = self.first_massive()
        out["first_massive_step"] = first["step"] if first else None
        return out


@dataclass(frozen=True)
class TrainResult:
    layer_names: list[str]
    loss_name: str
    classification: bool
    loss: np.ndarray  # (steps done,) minibatch loss of step 1, 2, ...
    grad_norm: np.ndarray  # (steps done, layers)
    update_ratio: np.ndarray  # (steps done, layers)
    evals: list[Evaluation]
    interrupted: bool
    diverged: bool
    # Why and where training diverged (training.divergence), e.g. "loss non-finite from step
    # 12"; None when it did not.
    divergence: str | None = None
    diverged_step: int | None = None
    # lnexp.models.probes on the held-out set after the last step, one value per block:
    # {"hidden_rms": [...], "attn_logit_max": [...] (transformer blocks)}; None: not measured.
    final_blocks: dict[str, list[float]] | None = None
    diagnostics: TrainDiagnostics | None = None  # train.log_every
    task: str = ""  # train.task; charlm's held-out loss is also reported in bits per character

    def bits_per_char(self, e: Evaluation) -> float | None:
        """A char-LM's held-out bits per character at evaluation `e` (eval mode), else None."""
        return e.loss_eval_mode / math.log(2) if self.task == "charlm" else None

    @property
    def steps_done(self) -> int:
        return len(self.loss)


@dataclass(frozen=True)
class LayerStats:
    """Per block at initialization (all float64): its output's mean/std and RMS over all
    values, how far apart the samples are (`spread`, `cosine`), the largest attention logit
    (transformer blocks), and the gradient of its weights after one backward pass of the init
    loss.

    `std` over all N x C values cannot tell "samples differ" from "every sample is the same
    vector with spread-out features" (deep sigmoid + LayerNorm: std 0.21 either way), hence
    `spread` and `cosine`.
    """

    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    # sqrt(mean over features of the variance over samples): 0 when every sample is the same
    spread: np.ndarray
    # mean cosine similarity over all pairs of distinct samples: 1 when they all point alike
    cosine: np.ndarray
    grad_norm: np.ndarray  # Frobenius norm of d L / d W over all of a block's weights
    weight_norm: np.ndarray
    loss: float
    # sqrt(mean x^2) of each block's output: the residual stream's size (lnexp.models.probes)
    hidden_rms: np.ndarray | None = None
    # transformer blocks: the largest attention logit max |q·k|/sqrt(d) per block, else None
    attn_logit_max: np.ndarray | None = None

    @property
    def grad_over_weight(self) -> np.ndarray:
        """‖∂L/∂W‖ / ‖W‖ per block: the relative step plain SGD with lr 1 would take."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.grad_norm / self.weight_norm)

    @property
    def first_over_last(self) -> float:
        """grad_norm of the first block / grad_norm of the last block."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.grad_norm[0] / self.grad_norm[-1])


@dataclass(frozen=True)
class Precision:
    """The run's outputs against float64 on the same weights and inputs. Each error is
    (max, mean) absolute difference over all values.

    `post_norm` / `output`: against float64 fed with the float32-drawn weights and inputs
    (everything the dtype costs: rounding the inputs and weights, and the arithmetic);
    `post_norm_same_inputs`: against float64 fed with the run's own rounded inputs and
    weights (the arithmetic alone); `input_error`: the rounding of the inputs themselves."""

    dtype: str
    device: str
    post_norm: tuple[float, float]
    output: tuple[float, float]
    post_norm_same_inputs: tuple[float, float]
    input_error: tuple[float, float]
    input_distinct_per_row: float  # median over rows (up to 1000) of distinct input values
    row_length: int  # values per input row


@dataclass(frozen=True)
class RunResult:
    """Everything one run computed; renderers turn it into tables, figures and files.

    `inputs`, `pre` and `post` hold the activations the figures draw: the first
    plan.KEEP_ROWS rows of the snapshot experiment (every row of a deeper or training run);
    the statistics always cover every row.
    """

    config: Config
    norm: norms.NormSpec
    inputs: np.ndarray  # (rows kept, in_features) float32
    pre: np.ndarray  # (rows kept, C) activations entering the norm, float32
    post: np.ndarray  # (rows kept, C) activations leaving the norm, float32
    pre_stats: StageStats
    post_stats: StageStats
    sample_pre: SampleStats
    sample_post: SampleStats
    nonfinite: dict[str, dict[str, int]]  # NaN/Inf counts per stage, over every row
    chunks: int = 1  # how many row chunks the batch was streamed in
    layers: LayerStats | None = None  # depth > 1
    training: TrainResult | None = None  # with a train: block
    precision: Precision | None = None  # None for a batch streamed in several chunks
    input_stats: StageStats | None = None  # the batch fed to the model
    # image / sequence: which values share one mean and variance with the reference value
    # (sample 0, channel 0, position 0), measured (experiment.sharing); (N, C, positions) bool
    sharing: np.ndarray | None = None

    @property
    def rows_kept(self) -> int:
        return int(self.pre.shape[0])

    @cached_property
    def numeric_trouble(self) -> dict[str, Any]:
        """NaN/Inf counts per stage (input, pre_norm, post_norm) and the first stage that has
        any, e.g. data.scale 1e39 overflows float32 at the input; eps 0 on a constant row
        divides 0 by 0 in post_norm."""
        first = next((name for name, c in self.nonfinite.items() if c["nonfinite"]), None)
        return {"detected": first is not None, "first_stage": first, **self.nonfinite}

    @property
    def verdicts(self) -> dict[str, Verdict]:
        """Post-norm verdict per axis (every axis computed): is it standardized?"""
        return {axis: verdict(a) for axis, a in self.post_stats.axes.items()}

    @property
    def standardized_axes(self) -> list[str]:
        """The axes whose every statistic has mean ~0 and biased variance ~1 after the norm."""
        return [axis for axis, v in self.verdicts.items() if v.standardized]

    @property
    def standardizes(self) -> str:
        """The standardized axes in words: 'samples', 'groups and samples', 'neither', ..."""
        return standardizes(self.standardized_axes)


@dataclass(frozen=True)
class NormOutcome:
    """One norm's column: its run, or the reason it could not be computed."""

    name: str
    spec: norms.NormSpec
    config: Config
    result: RunResult | None
    reason: str | None = None  # set exactly when result is None

    @property
    def folder(self) -> str:
        """Its run folder's name inside the compare folder (a user norm's spec made safe)."""
        return norms.folder_name(self.name)

    @property
    def why(self) -> str | None:
        """The reason without its leading '<name>: ' (for a cell already labelled by name)."""
        return None if self.reason is None else self.reason.removeprefix(f"{self.name}: ")

    @property
    def standardizes(self) -> str | None:
        """The axes it standardized in words ('features', 'samples', 'groups and samples',
        'tokens', 'instances', 'neither'); None if not computed."""
        return None if self.result is None else self.result.standardizes


@dataclass(frozen=True)
class CompareResult:
    """The base config and one outcome per requested norm, in the requested order."""

    config: Config
    outcomes: list[NormOutcome]

    @property
    def complete(self) -> bool:
        """True when every requested norm was computed."""
        return all(o.result is not None for o in self.outcomes)

    @property
    def not_computed(self) -> list[NormOutcome]:
        return [o for o in self.outcomes if o.result is None]
