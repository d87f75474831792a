from __future__ import annotations

import numpy as np
import pytest

from mtbert import metrics


def test_matthews_and_f1_on_a_known_confusion() -> None:
    gold = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    pred = np.array([1, 1, 0, 0, 0, 1, 0, 1])  # tp=3 fn=1 fp=1 tn=3
    assert metrics.matthews(pred, gold) == pytest.approx(50.0)
    assert metrics.f1_binary(pred, gold) == pytest.approx(75.0)
    assert metrics.accuracy(pred, gold) == pytest.approx(75.0)


def test_spearman_averages_tied_ranks() -> None:
    x = np.array([1.0, 2.0, 2.0, 3.0])
    y = np.array([1.0, 3.0, 2.0, 4.0])
    # ranks x = 1, 2.5, 2.5, 4; ranks y = 1, 3, 2, 4 -> Pearson of ranks
    assert metrics.spearman(x, y) == pytest.approx(metrics.pearson(np.array([1, 2.5, 2.5, 4]), np.array([1.0, 3, 2, 4])))
    assert metrics.pearson(x, 2 * x + 1) == pytest.approx(100.0)


def test_score_is_the_glue_mean_where_two_metrics_are_reported() -> None:
    gold = np.array([1, 0, 1, 1])
    pred = np.array([1, 0, 0, 1])
    values = metrics.compute("f1_acc", pred, gold)
    assert values["score"] == pytest.approx((values["f1"] + values["accuracy"]) / 2)
