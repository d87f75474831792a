"""The GLUE metrics, in numpy. Every function returns values in [0, 100] (correlations x100)."""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float((pred == gold).mean() * 100)


def f1_binary(pred: np.ndarray, gold: np.ndarray, positive: int = 1) -> float:
    tp = float(((pred == positive) & (gold == positive)).sum())
    fp = float(((pred == positive) & (gold != positive)).sum())
    fn = float(((pred != positive) & (gold == positive)).sum())
    return 0.0 if tp == 0 else 200 * tp / (2 * tp + fp + fn)


def matthews(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(((pred == 1) & (gold == 1)).sum())
    tn = float(((pred == 0) & (gold == 0)).sum())
    fp = float(((pred == 1) & (gold == 0)).sum())
    fn = float(((pred == 0) & (gold == 1)).sum())
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else float((tp * tn - fp * fn) / denominator * 100)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return 0.0 if denominator == 0 else float((x * y).sum() / denominator * 100)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties given their average rank (as scipy.stats.rankdata does)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(_ranks(x), _ranks(y))


def compute(metric: str, predictions: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """All values of a task's metric family; `score` is the single number used to compare models
    (GLUE's: the mean where a task reports two)."""
    if metric == "pearson_spearman":
        p, s = pearson(predictions, gold), spearman(predictions, gold)
        return {"pearson": p, "spearman": s, "score": (p + s) / 2}
    if metric == "f1_acc":
        f, a = f1_binary(predictions, gold), accuracy(predictions, gold)
        return {"f1": f, "accuracy": a, "score": (f + a) / 2}
    if metric == "mcc":
        m = matthews(predictions, gold)
        return {"mcc": m, "accuracy": accuracy(predictions, gold), "score": m}
    a = accuracy(predictions, gold)
    return {"accuracy": a, "score": a}
