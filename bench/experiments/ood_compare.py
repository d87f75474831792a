"""Compares out-of-domain measures for the intent tasks on the features `ood_features.py` cached:
each measure's threshold is set so that 1% of cross-fitted in-scope training examples are turned
away (the energy rule, which needs the head's logits on unseen data, on half of dev), then scored on
dev (in-scope rejection, accuracy lost) and on every other-domain source apart.

    /usr/bin/python3 bench/experiments/ood_compare.py /tmp/ood-features.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
from mtbert.ood import DistanceCalibration, cross_fit_distances, fit_gaussian  # noqa: E402

INTENTS = ("banking77", "clinc150", "snips", "atis")
OWN_SOURCE = {"banking77": "banking", "atis": "flights", "snips": "assistant"}
REJECT = 0.01


def cosine_scores(train: np.ndarray, labels: np.ndarray, query: np.ndarray, k: int | None) -> np.ndarray:
    """1 - cosine to the nearest class centroid (k None) or mean of the k nearest training rows."""
    t = train / np.linalg.norm(train, axis=1, keepdims=True)
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    if k is None:
        centroids = np.stack([t[labels == c].mean(0) for c in np.unique(labels)])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        return 1 - (q @ centroids.T).max(1)
    sims = q @ t.T
    return 1 - np.sort(sims, axis=1)[:, -k:].mean(1)


def cross_fit(score_fn, x: np.ndarray, y: np.ndarray, folds: int = 5) -> np.ndarray:  # noqa: ANN001
    fold = np.random.default_rng(0).permutation(len(y)) % folds
    out = np.zeros(len(y))
    for f in range(folds):
        out[fold == f] = score_fn(x[fold != f], y[fold != f], x[fold == f])
    return out


def energy(logits: np.ndarray) -> np.ndarray:
    m = logits.max(1, keepdims=True)
    return -(m[:, 0] + np.log(np.exp(logits - m).sum(1)))  # higher = more out of domain


def main() -> None:
    z = np.load(sys.argv[1])
    probes = sorted({k.split("/")[1] for k in z.files if k.startswith("probe/")})
    for task in INTENTS:
        names = z[f"{task}/labelnames"]
        index = {n: i for i, n in enumerate(names)}
        ytr = np.array([index.get(l, -1) for l in z[f"{task}/train/labels"]])
        ydev = np.array([index.get(l, -1) for l in z[f"{task}/dev/labels"]])
        oos = index.get("oos", -2)
        keep = ytr != oos
        dev_in = ydev != oos
        logits = z[f"logits/{task}/{task}/dev"]
        correct = (logits.argmax(1) == ydev) & dev_in
        sources = [p for p in probes if p != OWN_SOURCE.get(task)]
        print(f"\n## {task}: train {keep.sum()}, dev in-scope {dev_in.sum()}, head dev accuracy {100 * correct.sum() / dev_in.sum():.2f}")
        print("| measure | dev in-scope rejected | accuracy lost | " + " | ".join(sources) + " |")
        measures = {}
        for feat in ("mean5", "mean4", "cls5"):
            xtr, xdev = z[f"{task}/train/{feat}"][keep], z[f"{task}/dev/{feat}"]
            stats = fit_gaussian(xtr, ytr[keep])
            cal = DistanceCalibration.from_scores(cross_fit_distances(xtr, ytr[keep]), "cv")
            measures[f"mahalanobis {feat}"] = (lambda q, s=stats, c=cal: -c.p_value(s.distances(q)), -REJECT, feat)
        for name, k in (("centroid cosine mean5", None), ("5-NN cosine mean5", 5)):
            xtr = z[f"{task}/train/mean5"][keep]
            scores = cross_fit(lambda a, b, q, k=k: cosine_scores(a, b, q, k), xtr, ytr[keep])
            threshold = np.quantile(scores, 1 - REJECT)
            measures[name] = (lambda q, a=xtr, b=ytr[keep], k=k: cosine_scores(a, b, q, k), threshold, "mean5")
        half = np.random.default_rng(0).permutation(len(ydev))[: len(ydev) // 2]
        e_threshold = np.quantile(energy(logits[half][dev_in[half]]), 1 - REJECT)
        for name, (fn, threshold, feat) in measures.items():
            fires = fn(z[f"{task}/dev/{feat}"]) > threshold
            row = [100 * fires[dev_in].mean(), 100 * (correct & fires).sum() / dev_in.sum()]
            row += [100 * (fn(z[f"probe/{p}/{feat}"]) > threshold).mean() for p in sources]
            print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
        fires = energy(logits) > e_threshold
        row = [100 * fires[dev_in].mean(), 100 * (correct & fires).sum() / dev_in.sum()]
        row += [100 * (energy(z[f"logits/{task}/probe/{p}"]) > e_threshold).mean() for p in sources]
        print("| energy (head) | " + " | ".join(f"{v:.1f}" for v in row) + " |")


if __name__ == "__main__":
    main()
