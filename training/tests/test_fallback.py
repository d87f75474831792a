"""Out-of-scope fallback: the rule and threshold chosen on dev, and its way into the manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtbert.bundle import BundleWriter, verify
from mtbert.fallback import FALLBACK_FILE, FallbackChoice, choose_fallback, measures
from mtbert.pipeline import TaskSession
from mtbert.train import Hyper

TRAINING = Path(__file__).resolve().parents[1]


def test_measures_are_the_services() -> None:
    logits = torch.tensor([[2.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    m = measures(logits)
    p = torch.softmax(logits.double(), -1)
    assert np.allclose(m["maxProbability"], [p[0, 0], 1 / 3])
    assert np.allclose(m["margin"], [p[0, 0] - p[0, 1], 0.0])
    assert np.allclose(m["energy"], torch.logsumexp(logits.double(), -1))


def _confident(label: int, classes: int, margin: float) -> list[float]:
    row = [0.0] * classes
    row[label] = margin
    return row


def test_the_threshold_buys_the_most_recall_within_the_cost() -> None:
    # 3 classes, class 2 is "oos". In scope: 8 sure and right, 1 unsure and right, 1 wrong.
    # Out of scope: 2 the model calls oos itself, 2 unsure (caught by a threshold), 1 sure (never caught).
    rows = [_confident(i % 2, 3, 5.0) for i in range(8)] + [_confident(0, 3, 0.5), _confident(1, 3, 5.0)]
    gold = [i % 2 for i in range(8)] + [0, 0]
    rows += [_confident(2, 3, 5.0)] * 2 + [_confident(0, 3, 0.3), _confident(1, 3, 0.2), _confident(0, 3, 5.0)]
    gold += [2] * 5
    logits, labels = torch.tensor(rows), np.array(gold)

    free = choose_fallback("oos", logits, labels, 2, None, max_cost=0.0)
    assert free.selection["inScopeAccuracyWithout"] == pytest.approx(90.0)
    assert free.selection["oosRecallWithout"] == pytest.approx(40.0)
    # Nothing in scope may be lost: the threshold sits between the unsure out-of-scope pair and the unsure right answer.
    assert free.selection["inScopeAccuracy"] == pytest.approx(90.0)
    assert free.selection["oosRecall"] == pytest.approx(80.0)
    assert free.rule == "maxProbability"  # every rule separates these; ties go to the simplest

    costly = choose_fallback("oos", logits, labels, 2, None, max_cost=10.0)
    assert costly.selection["inScopeAccuracy"] == pytest.approx(80.0)  # the unsure right answer is given up
    assert costly.selection["oosRecall"] == pytest.approx(80.0)  # and buys nothing more: the sure one stays
    # Among thresholds of equal recall the highest within the cost is kept.
    assert costly.threshold > free.threshold


def test_without_out_of_scope_examples_the_highest_threshold_within_the_cost_is_taken() -> None:
    rows = [_confident(0, 2, 4.0)] * 8 + [_confident(1, 2, 0.1), _confident(0, 2, 0.2)]
    choice = choose_fallback("none", torch.tensor(rows), np.array([0] * 8 + [1, 0]), None, None, max_cost=10.0)
    assert choice.selection["oosExamples"] == 0
    assert choice.selection["inScopeAccuracy"] == pytest.approx(90.0)  # one of the two unsure ones, not both


def test_probe_examples_count_as_out_of_scope() -> None:
    rows = [_confident(0, 2, 4.0)] * 10
    probe = torch.tensor([_confident(1, 2, 0.1)] * 3 + [_confident(0, 2, 4.0)])
    choice = choose_fallback("out_of_scope", torch.tensor(rows), np.zeros(10, dtype=np.int64), None, probe, max_cost=0.5)
    assert (choice.selection["oosExamples"], choice.selection["oosRecall"], choice.selection["inScopeAccuracy"]) == (4, 75.0, 100.0)


@pytest.fixture(scope="module")
def snips_run(tiny_checkpoint: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "snips"
    TaskSession.open(tiny_checkpoint, tiny_data, "snips", max_length=32).partial(2, Hyper(epochs=1, batch_size=16, lr=1e-3), run)
    return run


def test_cli_chooses_on_dev_and_bundle_add_carries_it(snips_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mtbert", "fallback", "--run", str(snips_run), "--data", str(tiny_data), "--label", "out_of_scope", "--max-cost", "5", "--threads", "1"],
        cwd=TRAINING, capture_output=True, text=True, check=True,
    )
    assert "chosen:" in done.stdout
    choice = FallbackChoice.load(snips_run)
    assert choice is not None and (snips_run / "fallback.png").is_file()
    # Carried as chosen when the out-of-domain calibration (which replaces it by default) is left out.
    manifest = BundleWriter(tmp_path / "b").add(snips_run, name="t", version="1", max_length=32, ood=False)
    fallback = manifest["tasks"][0]["output"]["fallback"]
    assert fallback == {"label": "out_of_scope", "rule": choice.rule, "threshold": choice.threshold, "selection": choice.selection}
    assert verify(tmp_path / "b") == []


def test_a_fallback_chosen_for_other_weights_is_refused(snips_run: Path, tmp_path: Path) -> None:
    saved = json.loads((snips_run / FALLBACK_FILE).read_text())
    (snips_run / FALLBACK_FILE).write_text(json.dumps({**saved, "weights_sha256": "0" * 64}))
    try:
        with pytest.raises(ValueError, match="retrained"):
            BundleWriter(tmp_path / "b").add(snips_run, name="t", version="1", max_length=32)
    finally:
        (snips_run / FALLBACK_FILE).write_text(json.dumps(saved))
