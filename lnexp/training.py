"""Training on a synthetic task (lnexp/tasks.py). No I/O: progress goes to a callback.

The network is the configured model followed by a Linear head to the task's outputs. Each step
takes the next minibatch of a fresh shuffle per epoch (the last partial batch is dropped, so a
BatchNorm never sees a batch smaller than train.batch_size) and records, before and after the
optimizer step:

- loss: the minibatch loss the gradients come from;
- grad_norm: Frobenius norm of d loss / d W for every Linear's weight (blocks, then the head);
- update_ratio: ||W_after - W_before|| / ||W_before|| for the same weights.

At step 0, every `eval_every` steps and at the last step it evaluates the held-out set twice:
in eval mode (BatchNorm uses its running statistics; the whole set in one batch) and in train
mode (BatchNorm uses each batch's statistics, batches of train.batch_size, a last short batch
merged into the one before; on a copy, so the running statistics are not touched). For
every norm but bn the two agree; for bn their gap is what batch statistics cost at test time.

Training runs on one CPU thread (restored afterwards): for these small models extra threads
cost more than they save (measured: 300 steps of configs/batch_size.yaml took 10.5 s with 2
threads and 0.9 s with 1 on a busy 2-core machine), and history.csv does not depend on the
machine's core count.

With `train.warmup_steps` = W > 0 the learning rate rises linearly: step k <= W uses
lr * k / W, then lr (the schedule Xiong et al. 2020 find Post-LN transformers need).

With `train.log_every` = K, per-block diagnostics are recorded at step 1, every K steps and
at the last (lnexp/diagnostics.py).

Ctrl-C (KeyboardInterrupt) ends the loop: what was recorded is returned with interrupted=True.

Divergence (diverged=True, with `divergence` saying why and from which step): a non-finite
minibatch loss or gradient norm, which also ends the loop (the weights are no longer numbers
worth training), or a finite loss above DIVERGE_FACTOR times the first step's loss, which is
only recorded (training goes on, the history shows whether it came back).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lnexp.config import Config
from lnexp.results import Evaluation, TrainResult
from lnexp.tasks import Task

Progress = Callable[[int, int, str], None]  # (done, total, note), as lnexp.progress.steps gives

# A loss this many times its first value has blown up: cross-entropy starts near log(classes)
# (1.4 for 4) and MSE near the targets' variance, and a healthy run never rises 1000-fold.
DIVERGE_FACTOR = 1e3


def divergence(step: int, loss: float, first: float, grads: list[float]) -> str | None:
    """Why training has diverged at `step` (see the module docstring), or None."""
    if not math.isfinite(loss):
        return f"loss non-finite from step {step}"
    if not all(math.isfinite(g) for g in grads):
        return f"gradient non-finite from step {step}"
    if first > 0 and loss > DIVERGE_FACTOR * first:
        return (f"loss above {DIVERGE_FACTOR:g}x its first value ({first:.3g}) from step "
                f"{step}")
    return None


def _loss(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    """Cross-entropy (a char-LM's (N, T, vocab) logits: over every position) or MSE."""
    if classification and out.dim() == 3:
        return F.cross_entropy(out.flatten(0, 1), y.flatten())
    return F.cross_entropy(out, y) if classification else F.mse_loss(out, y)


def _evaluate(net: nn.Module, task: Task, batch_size: int, step: int) -> Evaluation:
    x, y, cls = task.x_heldout, task.y_heldout, task.classification

    def score(out: torch.Tensor) -> tuple[float, float | None]:
        acc = float((out.argmax(dim=-1) == y).double().mean()) if cls else None
        return float(_loss(out, y, cls)), acc

    with torch.no_grad():
        net.eval()
        loss_e, acc_e = score(net(x))
        net.train()
        twin = copy.deepcopy(net)  # train-mode forward updates running stats: use a copy
        n = len(x)
        starts = list(range(0, n, batch_size))
        if len(starts) > 1 and n - starts[-1] < batch_size:
            starts.pop()  # merge the short last batch into the one before
        ends = [*starts[1:], n]
        out_t = torch.cat([twin(x[a:b]) for a, b in zip(starts, ends, strict=True)])
        loss_t, acc_t = score(out_t)
    return Evaluation(step, loss_e, acc_e, loss_t, acc_t)


def _batches(n: int, batch_size: int, g: torch.Generator):
    while True:
        perm = torch.randperm(n, generator=g)
        for a in range(0, n - batch_size + 1, batch_size):
            yield perm[a:a + batch_size]


def train(cfg: Config, net: nn.Module, linears: list[nn.Linear], layer_names: list[str],
          task: Task, g: torch.Generator, progress: Progress | None = None) -> TrainResult:
    """Train `net` in place; `linears` are the weights whose norms are recorded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(cfg, net, linears, layer_names, task, g, progress)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: Config, net: nn.Module, linears: list[nn.Linear], layer_names: list[str],
           task: Task, g: torch.Generator, progress: Progress | None) -> TrainResult:
    tc = cfg.train
    assert tc is not None
    params = list(net.parameters())
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(params, lr=tc.lr) if tc.optimizer == "adam"
        else torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum))
    net.train()
    losses: list[float] = []
    grads: list[list[float]] = []
    ratios: list[list[float]] = []
    evals = [_evaluate(net, task, tc.batch_size, 0)]
    interrupted = False
    why: str | None = None
    when: int | None = None
    batches = _batches(len(task.x_train), tc.batch_size, g)
    logger = None
    if tc.log_every is not None:
        from lnexp.diagnostics import Logger, log_step

        logger = Logger(net)
    try:
        for step in range(1, tc.steps + 1):
            if tc.warmup_steps:
                for group in opt.param_groups:
                    group["lr"] = tc.lr * min(1.0, step / tc.warmup_steps)
            idx = next(batches)
            log = logger if logger is not None and log_step(step, tc.log_every, tc.steps) \
                else None
            with log.forward(step) if log is not None else contextlib.nullcontext():
                loss = _loss(net(task.x_train[idx]), task.y_train[idx], task.classification)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if log is not None:
                log.gradients()
            before = [lin.weight.detach().clone() for lin in linears]
            opt.step()
            value = float(loss.detach())
            grad_row = [float(lin.weight.grad.norm()) if lin.weight.grad is not None else 0.0
                        for lin in linears]
            ratio_row = [float((lin.weight.detach() - w0).norm() / w0.norm())
                         for lin, w0 in zip(linears, before, strict=True)]
            losses.append(value)
            grads.append(grad_row)
            ratios.append(ratio_row)
            if why is None:
                why = divergence(step, value, losses[0], grad_row)
                when = step if why else None
            if why and not (math.isfinite(value) and all(map(math.isfinite, grad_row))):
                break
            if step % tc.eval_every == 0 or step == tc.steps:
                evals.append(_evaluate(net, task, tc.batch_size, step))
            if progress is not None:
                progress(step, tc.steps, f"loss {value:.4g}")
    except KeyboardInterrupt:
        interrupted = True
    k = len(linears)
    n = min(len(losses), len(grads), len(ratios))  # a Ctrl-C between the appends
    losses, grads, ratios = losses[:n], grads[:n], ratios[:n]
    return TrainResult(
        layer_names=layer_names,
        loss_name="cross_entropy" if task.classification else "mse",
        classification=task.classification,
        loss=np.asarray(losses, dtype=np.float64),
        grad_norm=np.asarray(grads, dtype=np.float64).reshape(n, k),
        update_ratio=np.asarray(ratios, dtype=np.float64).reshape(n, k),
        evals=evals,
        interrupted=interrupted,
        diverged=why is not None,
        divergence=why,
        diverged_step=when,
        diagnostics=logger.diag if logger is not None else None,
        task=tc.task,
    )
