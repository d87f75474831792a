"""The step schedule: at least `min_steps` optimisation steps (small data trains more epochs, large
data exactly as before), early stopping on dev keeping the best check's weights."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from mtbert.encoded import EncodedSet
from mtbert.pipeline import TaskSession
from mtbert.tokenization import Encoding
from mtbert.train import EarlyStopping, Hyper, _epoch_batches, step_batches, train_loop


def _data(n: int) -> EncodedSet:
    return EncodedSet([Encoding([101] + [7] * (i % 5) + [102], [0] * (2 + i % 5)) for i in range(n)], torch.zeros(n, dtype=torch.long))


def test_large_data_keeps_its_epochs_batch_for_batch() -> None:
    data, hyper = _data(1000), Hyper(epochs=1.5, batch_size=32)
    before = _epoch_batches(data, hyper, random.Random(3))
    assert len(before) == 32 + 16
    for min_steps in (0, 10, 48):
        assert step_batches(data, Hyper(epochs=1.5, batch_size=32, min_steps=min_steps), random.Random(3)) == before


def test_small_data_trains_at_least_min_steps_over_whole_epochs() -> None:
    data = _data(60)
    batches = step_batches(data, Hyper(epochs=3, batch_size=32, min_steps=301), random.Random(0))
    assert len(batches) == 301
    assert batches[:6] == _epoch_batches(data, Hyper(epochs=3, batch_size=32), random.Random(0))
    for epoch in range(150):  # every later epoch sees each example once
        assert sorted(i for b in batches[2 * epoch : 2 * epoch + 2] for i in b) == list(range(60))


def test_early_stopping_keeps_the_best_check_and_stops_after_patience() -> None:
    module = torch.nn.Linear(2, 2)
    # (score, loss) per check: a tie on score with a lower loss is an improvement (check 3).
    results = iter([(50.0, 1.0), (80.0, 0.9), (80.0, 0.5), (80.0, 0.6), (70.0, 0.4), (float("nan"), 0.3)])
    seen: list[torch.Tensor] = []

    def check(m: torch.nn.Module) -> tuple[float, float]:
        assert not m.training  # checked in eval mode
        seen.append(m.weight.detach().clone())
        return next(results)

    stopping = EarlyStopping(module, check, every=10, patience=3)
    stops = []
    for step in range(1, 200):
        with torch.no_grad():
            module.weight.add_(1.0)  # a stand-in for an optimisation step
        if stopping.after_step(step, 199):
            stops.append(step)
            break
    assert stops == [60] and stopping.best_step == 30
    stopping.restore()
    assert torch.equal(module.weight, seen[2])
    assert EarlyStopping.check_interval(300, 2) == 15 and EarlyStopping.check_interval(3000, 300) == 300


def test_a_head_trained_with_early_stopping_records_its_steps(tiny_checkpoint: Path, tiny_data: Path) -> None:
    session = TaskSession.open(tiny_checkpoint, tiny_data, "sst2", max_length=32)
    info, _ = session.partial(2, Hyper(epochs=1, batch_size=16, lr=1e-3, min_steps=40, patience=2))
    steps = info.hyper["steps"]
    assert steps["planned"] == 40 and steps["kept"] <= steps["run"] <= 40
    assert steps["kept"] % 4 == 0 or steps["kept"] == steps["run"]  # checks every epoch (4 steps) or at the end
    again, _ = session.partial(2, Hyper(epochs=1, batch_size=16, lr=1e-3, min_steps=40, patience=2))
    assert (again.metrics, again.hyper["steps"]) == (info.metrics, steps)  # deterministic, checks included
    plain, _ = session.partial(2, Hyper(epochs=1, batch_size=16, lr=1e-3))
    assert plain.hyper["steps"] == {"planned": 4, "run": 4, "kept": 4}


def test_a_loop_without_a_check_ignores_patience() -> None:
    module = torch.nn.Linear(1, 1)
    log = train_loop(module, _data(8), Hyper(epochs=1, batch_size=4, min_steps=6, patience=1), lambda batch: module(torch.ones(len(batch), 1)).sum(), "t")
    assert (log.planned, log.run, log.kept) == (6, 6, 6)


def test_a_run_recorded_before_the_step_schedule_counts_as_trained_by_epochs_alone(tmp_path: Path) -> None:
    from mtbert.runs import RUN_FILE
    from mtbert.sweep import trained_with

    old = {"epochs": 3, "batch_size": 32, "lr": 1e-3, "warmup": 0.1, "weight_decay": 0.01, "seed": 0, "seconds": 12.0}
    (tmp_path / RUN_FILE).write_text(json.dumps({"hyper": old}), encoding="utf-8")
    assert trained_with(tmp_path, Hyper(epochs=3, lr=1e-3))  # a resumed recipe build retrains nothing
    assert not trained_with(tmp_path, Hyper(epochs=3, lr=1e-3, min_steps=150, patience=5))
