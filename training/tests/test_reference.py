"""Full fine-tuning references (`mtbert reference`): schedule, best epoch, resume, results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mtbert.cli import main
from mtbert.pipeline import TaskSession
from mtbert.reference import (
    BEST_FILE, LOG_FILE, RESULT_FILE, STATE_FILE, Interrupted, ReferenceSettings, best_epoch, full_model, read_reference, reference_optimizer, train_reference,
)

# 64 training lines in batches of 8: 8 steps per epoch.
SETTINGS = ReferenceSettings(epochs=2, lr=1e-3, batch_size=8, max_length=32)


@pytest.fixture(scope="module")
def session(tiny_checkpoint: Path, tiny_data: Path) -> TaskSession:
    return TaskSession.open(tiny_checkpoint, tiny_data, "snips", max_length=32)


def test_the_learning_rate_warms_up_linearly_then_decays_to_zero(session: TaskSession) -> None:
    settings = ReferenceSettings(epochs=4, lr=5e-5, warmup=0.1)
    optimizer, scheduler = reference_optimizer(full_model(session, 0), settings, steps_per_epoch=25)  # 100 steps, 10 of warm-up
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == 0.0
    assert rates[:11] == pytest.approx([5e-5 * s / 10 for s in range(11)])  # rising to the peak at step 10
    assert max(rates) == pytest.approx(5e-5) and rates.index(max(rates)) == 10
    assert rates[10:] == pytest.approx([5e-5 * (100 - s) / 90 for s in range(10, 100)])  # falling towards 0 at step 100
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_the_best_epoch_is_the_highest_dev_score_the_earliest_on_a_tie() -> None:
    history = [{"metrics": {"score": s}} for s in (71.0, 80.5, 79.0, 80.5)]
    assert best_epoch(history) == 2
    assert best_epoch(history[:1]) == 1


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu")


@pytest.mark.parametrize("stop_after", [5, 11], ids=["mid-epoch", "after-an-epoch-end"])
def test_a_resumed_run_ends_exactly_as_an_uninterrupted_one(session: TaskSession, tmp_path: Path, stop_after: int) -> None:
    whole = train_reference(session, SETTINGS, tmp_path / "whole", checkpoint_every=3)
    with pytest.raises(Interrupted):
        train_reference(session, SETTINGS, tmp_path / "resumed", checkpoint_every=3, stop_after=stop_after)
    assert (tmp_path / "resumed" / STATE_FILE).is_file() and not (tmp_path / "resumed" / RESULT_FILE).is_file()
    resumed = train_reference(session, SETTINGS, tmp_path / "resumed", checkpoint_every=3)
    assert "resumed at epoch" in (tmp_path / "resumed" / LOG_FILE).read_text(encoding="utf-8")
    assert [e["metrics"] for e in resumed["epochs"]] == [e["metrics"] for e in whole["epochs"]]
    assert resumed["bestEpoch"] == whole["bestEpoch"]
    a, b = _weights(tmp_path / "whole" / BEST_FILE), _weights(tmp_path / "resumed" / BEST_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    final = _weights(tmp_path / "whole" / STATE_FILE)["model"], _weights(tmp_path / "resumed" / STATE_FILE)["model"]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])


def test_a_run_folder_refuses_other_settings(session: TaskSession, tmp_path: Path) -> None:
    with pytest.raises(Interrupted):
        train_reference(session, SETTINGS, tmp_path, checkpoint_every=2, stop_after=2)
    with pytest.raises(ValueError, match="other settings"):
        train_reference(session, ReferenceSettings(epochs=3, lr=1e-3, batch_size=8, max_length=32), tmp_path)


@pytest.mark.parametrize(("task", "extra"), [("snips", []), ("rte", []), ("stsb", []), ("atis_slots", ["--crf"])], ids=["single", "pair", "regression", "tagging-crf"])
def test_the_command_writes_the_result_and_skips_a_finished_task(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, task: str, extra: list[str]) -> None:
    args = [
        "reference", "--task", task, "--pretrained", str(tiny_checkpoint), "--data", str(tiny_data), "--runs", str(tmp_path / "runs"),
        "--results", str(tmp_path / "references"), "--epochs", "2", "--lr", "1e-3", "--max-length", "32", *extra,
    ]
    main(args)
    result = read_reference(tmp_path / "references", task)
    assert result is not None
    assert (result["task"], result["method"], result["trainExamples"], result["devExamples"]) == (task, "full fine-tuning", 64, 32)
    assert result["settings"]["lr"] == 1e-3 and result["settings"]["warmup"] == 0.1 and result["settings"]["crf"] == bool(extra)
    assert [e["epoch"] for e in result["epochs"]] == [1, 2] and all("score" in e["metrics"] and e["trainSeconds"] >= 0 for e in result["epochs"])
    assert result["best"] == result["epochs"][result["bestEpoch"] - 1]["metrics"]
    assert result["machine"]["processor"] and result["checkpoint"]["fingerprint"]
    assert not any(p.suffix in {".pt", ".onnx"} for p in (tmp_path / "references").iterdir())  # no weights among the results
    state = tmp_path / "runs" / task / STATE_FILE
    written = state.stat().st_mtime_ns
    main(args)  # finished: skipped, nothing retrained
    assert state.stat().st_mtime_ns == written
    assert "skipped" in (tmp_path / "runs" / task / LOG_FILE).read_text(encoding="utf-8")
    assert json.loads((tmp_path / "references" / f"{task}.json").read_text(encoding="utf-8"))["epochs"] == result["epochs"]
