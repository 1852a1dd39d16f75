"""Measure every norm layer of a model over a stream of inputs: forward hooks feed the
streaming accumulators of lnexp.inspect.stats, batch by batch, under inference mode.

The model runs in eval mode (dropout off, BatchNorm on running statistics). Padding is masked
out of every statistic: a norm input whose leading axes match the batch's (B, T) attention
mask keeps only the real tokens' rows. Memory is bounded by the model and one batch: nothing
per input is kept.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lnexp.inspect import bn_running, roles
from lnexp.inspect import curves as curves_mod
from lnexp.inspect.discover import WHAT_COUNTS, NormLayer, as_rows, find_norms
from lnexp.inspect.errors import InspectError
from lnexp.inspect.inputs import Batch, Source
from lnexp.inspect.kurtosis import KurtosisAccumulator
from lnexp.inspect.massive import BlockProbe, find_blocks
from lnexp.inspect.models import LoadedModel
from lnexp.inspect.notes import findings
from lnexp.inspect.options import InspectOptions
from lnexp.inspect.outcome import (
    BatchNormCheck,
    Entry,
    InspectOutcome,
    LayerReport,
    ModelBatchNormCheck,
    ParamStats,
)
from lnexp.inspect.stats import QuantAccumulator, StageAccumulator

Progress = Callable[[int, int], None]  # (inputs done, inputs in all)


class HookError(Exception):
    """A failure inside lnexp's own hook: a bug (exit 70), never reported as bad input."""


class _Context:
    """The batch being run, shared by every hook: turns a norm input's leading shape into the
    rows to keep (padding out) and a way to locate rows back to (input, position, token)."""

    def __init__(self) -> None:
        self.batch: Batch | None = None
        self.active = True
        self.order: list[_Probe] = []
        self._cache: dict[tuple[int, ...], tuple[torch.Tensor | None, Any]] = {}

    def start(self, batch: Batch) -> None:
        self.batch = batch
        self._cache.clear()

    def rows(self, lead: tuple[int, ...]) -> tuple[torch.Tensor | None, Any]:
        hit = self._cache.get(lead)
        if hit is None:
            hit = self._cache[lead] = self._rows(lead)
        return hit

    def _rows(self, lead: tuple[int, ...]) -> tuple[torch.Tensor | None, Any]:
        b = self.batch
        assert b is not None
        if b.mask is not None and lead == tuple(b.mask.shape):
            where = b.mask.nonzero()  # (R, 2) in row-major order, as x[mask] keeps rows
            ids = b.token_ids[where[:, 0], where[:, 1]] if b.token_ids is not None \
                else torch.full((where.shape[0],), -1)
            table = torch.stack([where[:, 0] + b.offset, where[:, 1], ids], dim=1)
            return b.mask.reshape(-1), lambda idx: table[idx]
        per_input = math.prod(lead[1:])  # rows per input: tokens or spatial positions
        offset = b.offset

        def locate(idx: torch.Tensor) -> torch.Tensor:
            pos = idx % per_input if len(lead) > 1 else torch.full_like(idx, -1)
            return torch.stack([offset + idx // per_input, pos, torch.full_like(idx, -1)], 1)

        return None, locate


def _tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a module's output or arguments (HF norms return tensors; some
    modules return tuples or output objects)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if hasattr(obj, "logits") and isinstance(obj.logits, torch.Tensor):
        return obj.logits
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) \
        else ()
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
    return None


class _Probe:
    """The hook and accumulators of one norm layer."""

    def __init__(self, layer: NormLayer, opts: InspectOptions, ctx: _Context):
        self.layer = layer
        self.ctx = ctx
        self.opts = opts
        self.calls = 0
        self.pre = StageAccumulator(opts.carriers, opts.largest_tokens)
        self.post = StageAccumulator(opts.carriers, opts.largest_tokens)
        self.quant = QuantAccumulator()
        self.tails_pre, self.tails_post = KurtosisAccumulator(), KurtosisAccumulator()
        self.curve: curves_mod.CurveSampler | None = None  # set on the selected layers
        self.bn_batches = self.bn_skipped = 0
        self.bn_diff2 = self.bn_ref2 = self.bn_maxabs = 0.0

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 output: Any) -> None:
        if not self.ctx.active:
            return
        x = _tensor(args) if args else _tensor(kwargs)
        y = _tensor(output)
        if x is None or not x.is_floating_point():
            return
        if self.calls == 0:
            self.ctx.order.append(self)
        self.calls += 1
        try:
            xd, locate = self._rows(x)
            self.pre.update(xd, locate)
            self.quant.update(xd)
            self.tails_pre.update(xd)
            if self.curve is not None:
                self.curve.update(xd)
            if y is not None and y.is_floating_point():
                yd, ylocate = self._rows(y)
                self.post.update(yd, ylocate)
                self.tails_post.update(yd)
            if self.layer.is_batchnorm and self.opts.batchnorm_check:
                self._batchnorm(module, x, y)
        except Exception as exc:  # ours, not the model's: must not read as a bad input
            raise HookError(f"measuring {self.layer.name} ({self.layer.type}, input "
                            f"{tuple(x.shape)}): {type(exc).__name__}: {exc}") from exc

    def _rows(self, t: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """`t` as float64 (tokens, dims) rows without padding, and how to locate them."""
        rows, lead = as_rows(self.layer, t.detach())
        keep, locate = self.ctx.rows(lead)
        if keep is not None:
            rows = rows[keep]  # drop padding before the float64 copy
        return rows.to(torch.float64), locate

    def _batchnorm(self, m: Any, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """Train mode on this batch (its own statistics) vs the eval output just computed."""
        if y is None or x.dim() < 2 or x.numel() // x.shape[1] <= 1:
            self.bn_skipped += 1  # one value per channel: train mode is not defined
            return
        w = m.weight.detach().double() if m.weight is not None else None
        b = m.bias.detach().double() if m.bias is not None else None
        yt = F.batch_norm(x.detach().double(), None, None, w, b, True, 0.0, m.eps)
        ye = y.detach().double()
        d = yt - ye
        self.bn_batches += 1
        self.bn_diff2 += float((d * d).sum())
        self.bn_ref2 += float((ye * ye).sum())
        self.bn_maxabs = max(self.bn_maxabs, float(d.abs().max()))

    def report(self, index: int, label: Callable[[int], str | None],
               role: str | None = None) -> LayerReport:
        k = self.opts.top_k
        pre = self.pre.result(k, label)
        # None when no call's output was a floating-point tensor lnexp could find: "not
        # measured", never the input's statistics in its place.
        post = self.post.result(k, label) if self.post.n else None
        dims = [o.dim for o in pre.outliers]
        m = self.layer.module
        form = roles.weight_form(m)
        bn = None
        if self.layer.is_batchnorm and self.opts.batchnorm_check:
            bn = BatchNormCheck(
                batches=self.bn_batches, skipped=self.bn_skipped,
                rel_rms_diff=math.sqrt(self.bn_diff2 / self.bn_ref2) if self.bn_ref2 else None,
                max_abs_diff=self.bn_maxabs if self.bn_batches else None)
        return LayerReport(
            index=index, name=self.layer.name, type=self.layer.type,
            found_by=self.layer.found_by, axis=self.layer.axis,
            normalized_shape=self.layer.normalized_shape, eps=self.layer.eps, calls=self.calls,
            pre=pre, post=post, weight=param_stats(roles.effective_weight(m, form), dims, k),
            bias=param_stats(getattr(m, "bias", None), dims, k), quant=self.quant.result(),
            batchnorm=bn, role=role, weight_form=form, tails_pre=self.tails_pre.result(),
            tails_post=self.tails_post.result() if self.post.n else None)


def param_stats(p: Any, outlier_dims: list[int], k: int) -> ParamStats | None:
    """Extremes of a learned weight or bias by |value|, and its values at the outlier dims
    with their rank (1 = the largest |value| of the layer)."""
    if not isinstance(p, torch.Tensor) or p.numel() == 0:
        return None
    v = p.detach().double().reshape(-1).numpy().copy()
    a = np.abs(v)
    order = np.argsort(-a, kind="stable")
    rank = np.empty(v.size, dtype=np.int64)
    rank[order] = np.arange(1, v.size + 1)
    largest = [Entry(int(d), float(v[d])) for d in order[:k]]
    smallest = [Entry(int(d), float(v[d])) for d in np.argsort(a, kind="stable")[:k]]
    at = [Entry(d, float(v[d]), int(rank[d])) for d in outlier_dims if d < v.size] \
        if v.size > 1 else []
    return ParamStats(values=v, largest=largest, smallest_abs=smallest, at_outliers=at)


class _ModelBatchNorm:
    """Runs each batch again with every BatchNorm in train mode (running statistics restored
    afterwards) and compares the model's output and, for class logits, its predictions."""

    def __init__(self, model: nn.Module, bns: list[nn.Module], batch_size: int):
        self.model, self.bns, self.batch_size = model, bns, batch_size
        self.batches = self.skipped = 0
        self.diff2 = self.ref2 = 0.0
        self.predictions = self.changed = 0
        self.classifier = True

    def update(self, batch: Batch, out_eval: torch.Tensor | None, ctx: _Context) -> None:
        if out_eval is None or not out_eval.is_floating_point():
            return
        saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in self.bns]
        ctx.active = False
        try:
            for m in self.bns:
                m.train()
            out_train = _tensor(self.model(*batch.args, **batch.kwargs))
        except ValueError:  # "Expected more than 1 value per channel when training"
            self.skipped += 1
            return
        finally:
            for m, bufs in zip(self.bns, saved, strict=True):
                m.eval()
                for k, v in bufs.items():
                    getattr(m, k).copy_(v)
            ctx.active = True
        if out_train is None or out_train.shape != out_eval.shape:
            return
        e, t = out_eval.double(), out_train.double()
        self.batches += 1
        self.diff2 += float(((t - e) ** 2).sum())
        self.ref2 += float((e * e).sum())
        if e.dim() == 2 and e.shape[1] >= 2 and e.shape[0] == batch.size:
            self.predictions += e.shape[0]
            self.changed += int((e.argmax(1) != t.argmax(1)).sum())
        else:
            self.classifier = False

    def result(self) -> ModelBatchNormCheck:
        cls = self.classifier and self.predictions > 0
        return ModelBatchNormCheck(
            batch_size=self.batch_size, batches=self.batches, skipped=self.skipped,
            output_rel_rms_diff=math.sqrt(self.diff2 / self.ref2) if self.ref2 else None,
            predictions=self.predictions if cls else None,
            predictions_changed=self.changed if cls else None)


def measure(loaded: LoadedModel, source: Source, options: InspectOptions,
            progress: Progress | None = None) -> InspectOutcome:
    """Run every input through the model with hooks on its norm layers; no files, no prints."""
    model: nn.Module = loaded.module
    layers = find_norms(model)
    if not layers:
        raise InspectError(f"model {loaded.spec} has no normalization layers (looked for "
                           f"{WHAT_COUNTS})")
    ctx = _Context()
    probes, block_probes = _probes(model, layers, options, ctx)
    bns = [p.layer.module for p in probes if p.layer.is_batchnorm]
    model_bn = _ModelBatchNorm(model, bns, options.batch_size) \
        if bns and options.batchnorm_check else None
    handles = [p.layer.module.register_forward_hook(p, with_kwargs=True) for p in probes]
    handles += [b.block.module.register_forward_hook(b, with_kwargs=True) for b in block_probes]
    was_training = model.training
    readout = getattr(source, "readout", None)  # media.py: classes or pitch per input
    model.eval()
    start = time.perf_counter()
    done = 0
    tokens = 0
    try:
        with torch.inference_mode():
            for batch in source.batches(options.batch_size):
                ctx.start(batch)
                try:
                    out = model(*batch.args, **batch.kwargs)
                except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                    raise InspectError(_forward_error(loaded, batch, exc)) from None
                except (KeyboardInterrupt, Exception):
                    raise
                except BaseException as exc:  # sys.exit() or a custom BaseException: the model's
                    raise InspectError(_forward_error(loaded, batch, exc)) from None
                if model_bn is not None:
                    model_bn.update(batch, _tensor(out), ctx)
                if readout is not None:
                    readout.update(_tensor(out), batch)
                done += batch.size
                tokens += int(batch.mask.sum()) if batch.mask is not None else batch.size
                if progress is not None:
                    progress(done, source.count)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not ctx.order:
        raise InspectError(f"none of the {len(layers)} normalization layers of "
                           f"{loaded.spec} ran on these inputs")
    label = _labeller(loaded.tokenizer)
    role = roles.assign(model, layers)
    reports = bn_running.annotate(
        model, [p.report(i, label, role[p.layer.name]) for i, p in enumerate(ctx.order)])
    seen = {id(p) for p in ctx.order}
    last = max(len(ctx.order) - 1, 1)
    curves = [p.curve.result(p.layer.name, p.layer.type, i / last)
              for i, p in enumerate(ctx.order) if p.curve is not None]
    massive = [b.acc.result(b.block, len(block_probes), label) for b in block_probes
               if b.acc.count]
    outcome = InspectOutcome(
        model={**loaded.info(), "norm_layout": roles.layout([r.role for r in reports])},
        inputs={"kind": source.kind, "description": source.description, "count": source.count,
                "tokens": tokens if source.kind == "text" else None,
                "batch_size": options.batch_size, "padding_masked": source.kind == "text"},
        options=options.as_dict(), layers=reports,
        unused=[p.layer.name for p in probes if id(p) not in seen],
        batchnorm_model=model_bn.result() if model_bn is not None else None,
        seconds=time.perf_counter() - start,
        predictions=readout.result() if readout is not None else None,
        massive=massive, curves=curves, blocks=[b.block for b in block_probes])
    return dataclasses.replace(outcome, notes=findings(outcome))


def _probes(model: nn.Module, layers: list[NormLayer], options: InspectOptions,
            ctx: _Context) -> tuple[list[_Probe], list[BlockProbe]]:
    """A probe per norm layer (with an S-curve sampler on the selected ones) and per block."""
    probes = [_Probe(layer, options, ctx) for layer in layers]
    chosen = {id(la) for la in curves_mod.select(layers, options.curve_layers)}
    for i, p in enumerate(probes):
        if id(p.layer) in chosen:
            p.curve = curves_mod.CurveSampler("rms" not in p.layer.type.lower(), p.layer.eps,
                                              options.seed + i)
    blocks = find_blocks(model, [la.module for la in layers])
    axis = {id(la.module): la.axis for la in layers}

    def channel(block: nn.Module) -> bool:
        return next((axis[id(m)] for m in block.modules() if id(m) in axis), "last") \
            == "channel"

    return probes, [BlockProbe(b, options.top_k, ctx, channel(b.module)) for b in blocks]


def _forward_error(loaded: LoadedModel, batch: Batch, exc: BaseException) -> str:
    shapes = ", ".join(str(tuple(a.shape)) for a in batch.args if isinstance(a, torch.Tensor))
    first = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else \
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"model {loaded.spec} failed on the inputs"
            + (f" of shape {shapes}" if shapes else "") + f": {first}")


def _labeller(tokenizer: Any | None) -> Callable[[int], str | None]:
    if tokenizer is None:
        return lambda _id: None
    return lambda token_id: str(tokenizer.convert_ids_to_tokens(int(token_id)))
