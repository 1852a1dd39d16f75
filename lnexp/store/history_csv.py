"""history.csv of a training run: one row per step, the evaluations and the per-block
diagnostics of train.log_every where they were taken."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lnexp.results import TrainResult


def history_csv(tr: TrainResult) -> str:
    """history.csv: one row per step (step 0: the evaluation before training). Eval columns are
    empty except at evaluation steps; floats are written with repr (round-trip exact)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    bpc = tr.task == "charlm"
    d = tr.diagnostics
    diag_columns = d.columns() if d is not None else []
    w.writerow(["step", "loss", "heldout_loss_eval_mode", "heldout_acc_eval_mode",
                "heldout_loss_train_mode", "heldout_acc_train_mode",
                *(["heldout_bits_per_char"] if bpc else []),
                *(f"grad_norm.{n}" for n in tr.layer_names),
                *(f"update_ratio.{n}" for n in tr.layer_names),
                *diag_columns])
    evals = {e.step: e for e in tr.evals}
    k = len(tr.layer_names)

    def f(x: float | None) -> str:
        return "" if x is None else repr(float(x))

    for step in range(tr.steps_done + 1):
        e = evals.get(step)
        ev = ([f(e.loss_eval_mode), f(e.acc_eval_mode), f(e.loss_train_mode),
               f(e.acc_train_mode), *([f(tr.bits_per_char(e))] if bpc else [])]
              if e else [""] * (5 if bpc else 4))
        values = d.row(step) if d is not None else None
        diag = [f(v) for v in values] if values is not None else [""] * len(diag_columns)
        if step == 0:
            w.writerow([0, "", *ev, *[""] * (2 * k), *diag])
        else:
            i = step - 1
            w.writerow([step, f(tr.loss[i]), *ev, *(f(v) for v in tr.grad_norm[i]),
                        *(f(v) for v in tr.update_ratio[i]), *diag])
    return buf.getvalue()
