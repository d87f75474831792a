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


# ---------------------------------------------------------------------------- tagging (BIO)
def bio_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """Entities (type, first word, last word) of a BIO sequence, read as conlleval does: B-X
    starts an entity; I-X continues one of type X, and otherwise (after O, at the start, or after
    another type) starts a new one; an entity ends before O, B-, or a tag of another type."""
    spans: set[tuple[str, int, int]] = set()
    current: tuple[str, int] | None = None  # (type, start) of the open entity
    for index, tag in enumerate([*tags, "O"]):  # the sentinel O closes an entity at the end
        prefix, kind = (tag[0], tag[2:]) if tag != "O" and len(tag) > 2 and tag[1] == "-" else ("O", "")
        continues = prefix == "I" and current is not None and current[0] == kind
        if current is not None and not continues:
            spans.add((current[0], current[1], index - 1))
            current = None
        if prefix in ("B", "I") and not continues:
            current = (kind, index)
    return spans


def span_scores(predicted: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over exact entity matches (type and both bounds)."""
    found = correct = expected = 0
    for p, g in zip(predicted, gold):
        p_spans, g_spans = bio_spans(p), bio_spans(g)
        found, expected, correct = found + len(p_spans), expected + len(g_spans), correct + len(p_spans & g_spans)
    precision = 100 * correct / found if found else 0.0
    recall = 100 * correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "span_f1": f1}


def compute_tagging(predicted: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    """Span F1 (conlleval), its precision and recall, and word-level tag accuracy; score = span F1."""
    if any(len(p) != len(g) for p, g in zip(predicted, gold)):
        raise ValueError("every predicted sentence needs one tag per gold word")
    values = span_scores(predicted, gold)
    words = sum(len(g) for g in gold)
    same = sum(a == b for p, g in zip(predicted, gold) for a, b in zip(p, g))
    values["token_accuracy"] = 100 * same / words if words else 0.0
    values["score"] = values["span_f1"]
    return values
