"""lnexp.tasks: the synthetic tasks come from their own generator and split as documented."""

from __future__ import annotations

import torch

from lnexp import tasks
from lnexp.config import TrainConfig


def test_same_seed_same_task_and_the_global_rng_untouched() -> None:
    cfg = TrainConfig(n_train=16, n_heldout=8, batch_size=4)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = tasks.make_task(cfg, 5, tasks.generator(7))
    assert torch.equal(torch.get_rng_state(), before)
    b = tasks.make_task(cfg, 5, tasks.generator(7))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_heldout, b.y_heldout)


def test_clusters_are_classification_with_labels_in_range() -> None:
    t = tasks.make_task(TrainConfig(outputs=3, n_train=30, n_heldout=10, batch_size=4), 4,
                        tasks.generator(0))
    assert t.classification and t.x_train.shape == (30, 4) and t.x_heldout.shape == (10, 4)
    assert set(t.y_train.tolist()) <= {0, 1, 2}


def test_teacher_is_regression_with_one_column_per_output() -> None:
    t = tasks.make_task(TrainConfig(task="teacher", outputs=2, n_train=12, n_heldout=6,
                                    batch_size=4), 3, tasks.generator(1))
    assert not t.classification and t.y_train.shape == (12, 2) and t.y_heldout.shape == (6, 2)


def test_retrieve_labels_are_the_marked_symbol_and_a_position_alone_is_not_enough() -> None:
    cfg = TrainConfig(task="retrieve", outputs=5, n_train=64, n_heldout=16, batch_size=4)
    t = tasks.make_task(cfg, 12, tasks.generator(0), tokens=6)
    assert t.x_train.shape == (64, 6, 12) and t.classification
    # The label does not depend on the last position (where it is read) beyond chance.
    last_tokens = t.x_train[:, -1]
    assert not all(torch.equal(last_tokens[i], last_tokens[j]) for i in range(64) for j in
                   range(64) if t.y_train[i] == t.y_train[j])


def test_retrieve_trains_any_sequence_block_and_reads_the_last_token() -> None:
    """retrieve runs on data.layout: sequence with every block; per-token blocks (linear) see
    no other position, so they stay near chance, while a transformer can learn it."""
    from lnexp.config import from_mapping
    from lnexp.experiment import run

    cfg = from_mapping({"data": {"layout": "sequence", "tokens": 4, "n_samples": 4},
                        "model": {"in_features": 8, "out_features": 8, "block": "linear"},
                        "train": {"task": "retrieve", "outputs": 4, "n_train": 64,
                                  "n_heldout": 32, "steps": 5, "batch_size": 16,
                                  "eval_every": 5},
                        "output": {"figures": False}})
    tr = run(cfg).training
    assert tr.steps_done == 5 and not tr.diverged and tr.evals[-1].acc_eval_mode <= 0.6
