"""Median and range over seeds of a `lnexp sweep configs/digits_batch.yaml` folder, as the
README's batch-size table: python scripts/digits_finding.py outputs/digits_batch-sweep/<run>

Reads every trial's metrics.json (training.final.heldout, training.final.train_loss_last_10pct)
and prints one markdown table per budget (fixed steps, fixed epochs) and metric.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

METRICS = {
    "held-out accuracy, eval mode": ("heldout", "eval_mode", "accuracy"),
    "held-out accuracy, train mode (batch statistics)": ("heldout", "train_mode", "accuracy"),
    "training loss (last 10% of steps)": ("train_loss_last_10pct",),
}


def main(folder: Path) -> None:
    cells: dict[tuple, list[float]] = defaultdict(list)
    steps: dict[tuple, int] = {}
    for metrics in sorted(folder.glob("t*/metrics.json")):
        doc = json.loads(metrics.read_text())
        cfg, final = doc["config"], doc["training"]["final"]
        budget = (f"{cfg['train']['epochs']} epochs" if cfg["train"]["epochs"]
                  else f"{cfg['train']['steps']} steps")
        norm, batch = cfg["model"]["norm"], cfg["train"]["batch_size"]
        steps[(budget, batch)] = doc["training"]["steps_done"]
        for name, path in METRICS.items():
            value = final
            for part in path:
                value = value[part]
            cells[(name, budget, norm, batch)].append(float(value))
    budgets = sorted({k[1] for k in cells})
    norms = list(dict.fromkeys(k[2] for k in sorted(cells, key=lambda k: k[2])))
    batches = sorted({k[3] for k in cells})
    for name in METRICS:
        for budget in budgets:
            print(f"\n{name}, {budget} (median [min, max] over seeds; n per cell)\n")
            print("| norm | " + " | ".join(
                f"batch {b} ({steps[(budget, b)]} steps)" for b in batches) + " |")
            print("| --- |" + " --- |" * len(batches))
            for norm in ("bn", "group", "ln", "none"):
                if norm not in norms:
                    continue
                row = []
                for b in batches:
                    v = cells.get((name, budget, norm, b), [])
                    row.append(f"{statistics.median(v):.3f} [{min(v):.3f}, {max(v):.3f}] n={len(v)}"
                               if v else "")
                print(f"| {norm} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
