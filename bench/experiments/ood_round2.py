"""Out-of-domain measure, second round: token-level distances, unit-length pooled features, and the
threshold of a task of a few dozen rows (bench/experiments/README.md).

    cd training
    /usr/bin/python3 ../bench/experiments/ood_round2.py cache --out /tmp/ood-tokens.pkl      # layer-4 token states
    /usr/bin/python3 ../bench/experiments/ood_round2.py tokens /tmp/ood-tokens.pkl          # SNIPS: pooled vs token-level
    /usr/bin/python3 ../bench/experiments/ood_round2.py unit /tmp/ood-tokens.pkl            # raw vs unit-length pooled
    /usr/bin/python3 ../bench/experiments/ood_round2.py small /tmp/ood-tokens.pkl           # 60-row tasks: curve and features
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mtbert.checkpoint import load_checkpoint  # noqa: E402
from mtbert.ood import DistanceCalibration, cross_fit_distances, fit_gaussian, threshold_for  # noqa: E402
from mtbert.tokenization import WordPieceTokenizer  # noqa: E402
from mtbert.train import build_trunk, length_batches, pad_ids  # noqa: E402
from ood_features import INTENTS, PROBES, read, run_experiment  # noqa: E402

SELF = {"banking77": "banking", "atis": "flights", "snips": "assistant", "clinc150": "clinc_oos"}  # a task's own probe source
Scorer = Callable[[np.ndarray], np.ndarray]


def cache(args: argparse.Namespace) -> None:
    """Layer-4 token states (float16, int8 trunk as served) of each intent task's train (seeded 4,000) and
    dev texts and of the ten probe sources (500 each), with labels."""
    torch.set_num_threads(2)
    checkpoint = load_checkpoint(args.pretrained)
    trunk = build_trunk(checkpoint, 5, int8_matmuls=True)
    tokenizer = WordPieceTokenizer.from_file(checkpoint.vocab_path, max_length=128)

    def states(texts: list[str], desc: str) -> list[np.ndarray]:
        encodings = [tokenizer.encode(t) for t in texts]
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        with torch.no_grad():
            for batch in tqdm(length_batches([len(e.input_ids) for e in encodings], 128, None), desc=desc, leave=False):
                ids, mask, types = pad_ids([encodings[i] for i in batch])
                hidden = trunk(ids, mask, types)[4]
                for row, i in enumerate(batch):
                    out[i] = hidden[row, : int(mask[row].sum())].numpy().astype(np.float16)
        return out

    saved: dict[str, tuple[list[np.ndarray], np.ndarray | None]] = {}
    for task in INTENTS:
        for split in ("train", "dev"):
            texts, labels = read(args.data, task, split, 4000 if split == "train" else None)
            saved[f"{task}/{split}"] = (states(texts, f"{task} {split}"), np.array(labels))
    for probe, (task, split, _) in PROBES.items():
        texts, _ = read(args.data, task, split, 500)
        if probe == "clinc_oos":
            texts = [t for t, label in zip(*read(args.data, task, split)) if label == "oos"]
        saved[f"probe/{probe}"] = (states(texts, probe), None)
    args.out.write_bytes(pickle.dumps(saved))


def pool(states: list[np.ndarray]) -> np.ndarray:
    return np.stack([s.astype(np.float32).mean(0) for s in states])


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 15) -> np.ndarray:
    centres = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iterations):
        nearest = ((x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None]).argmin(1)
        for j in range(k):
            if (nearest == j).any():
                centres[j] = x[nearest == j].mean(0)
    return nearest


def token_scorer(states: list[np.ndarray], k: int, aggregate: str, rng: np.random.Generator) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Distance of each token (not [CLS], [SEP]) to the nearest of k clusters of training tokens under one
    shared covariance; an utterance's score is the max or mean over its tokens."""
    def tokens(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        inner = [s.astype(np.float32)[1:-1] if len(s) > 2 else s.astype(np.float32) for s in rows]
        return np.concatenate(inner), np.concatenate([np.full(len(s), i) for i, s in enumerate(inner)])
    x, _ = tokens(states)
    x = x[rng.choice(len(x), min(len(x), 60_000), replace=False)]
    stats = fit_gaussian(x, kmeans(x, k, rng))

    def score(rows: list[np.ndarray]) -> np.ndarray:
        t, owner = tokens(rows)
        d, out = stats.distances(t), np.zeros(len(rows), np.float32)
        if aggregate == "max":
            np.maximum.at(out, owner, d)
            return out
        np.add.at(out, owner, d)
        return out / np.bincount(owner, minlength=len(rows))
    return score


def tokens_vs_pooled(saved: dict) -> None:
    """SNIPS, 1% of cross-fitted training utterances turned away: pooled Mahalanobis, token-level (k=64),
    and each combined with pooled by the larger standardised log-distance."""
    rng = np.random.default_rng(0)
    train, labels = saved["snips/train"]
    dev = saved["snips/dev"][0]
    folds = rng.permutation(len(train)) % 5
    makers = {
        "pooled": lambda s, y: (lambda st: lambda r: st.distances(pool(r)))(fit_gaussian(pool(s), y)),
        "tokens, max": lambda s, y: token_scorer(s, 64, "max", rng),
        "tokens, mean": lambda s, y: token_scorer(s, 64, "mean", rng),
    }
    held, full = {}, {}
    for name, make in makers.items():
        held[name] = np.zeros(len(train))
        for f in range(5):
            fit = [s for s, k in zip(train, folds) if k != f]
            held[name][folds == f] = make(fit, labels[folds != f])([s for s, k in zip(train, folds) if k == f])
        held[name], full[name] = np.log(held[name]), make(train, labels)
    combos = {n: [n] for n in makers} | {"pooled + tokens, max": ["pooled", "tokens, max"], "pooled + tokens, mean": ["pooled", "tokens, mean"]}
    for name, parts in combos.items():
        def combined(get: Callable[[str], np.ndarray]) -> np.ndarray:
            return np.max([(get(p) - held[p].mean()) / held[p].std() for p in parts], axis=0)
        threshold = np.quantile(combined(lambda p: held[p]), 0.99)
        rate = lambda rows: 100 * float((combined(lambda p: np.log(full[p](rows))) > threshold).mean())  # noqa: E731
        sources = {p[6:]: rate(saved[p][0]) for p in saved if p.startswith("probe/") and p[6:] != SELF["snips"]}
        print(f"| {name} | {rate(dev):.1f} | " + " | ".join(f"{v:.1f}" for v in sources.values()) + " |", flush=True)
    print("sources: " + ", ".join(p[6:] for p in saved if p.startswith("probe/") and p[6:] != SELF["snips"]))


def raw_vs_unit(saved: dict) -> None:
    """Pooled Mahalanobis on raw vs unit-length mean-pooled features, 1% of cross-fitted training turned away."""
    for task in ("snips", "banking77", "atis"):
        train, labels = saved[f"{task}/train"]
        for name, features in (("raw", pool), ("unit length", lambda r: unit(pool(r)))):
            x = features(train)
            threshold = np.quantile(cross_fit_distances(x, labels), 0.99)
            stats = fit_gaussian(x, labels)
            rate = lambda rows: 100 * float((stats.distances(features(rows)) > threshold).mean())  # noqa: E731,B023
            sources = [f"{p[6:]} {rate(saved[p][0]):.0f}" for p in saved if p.startswith("probe/") and p[6:] != SELF[task]]
            print(f"{task} {name}: dev {rate(saved[f'{task}/dev'][0]):.1f} | " + ", ".join(sources), flush=True)


def small_tasks(saved: dict, trials: int = 30) -> None:
    """Tasks of 3 random CLINC150 intents x 20 training rows: raw vs unit-length features, empirical
    (conformal, Wilson-bounded threshold) vs log-normal curve, aiming at 1% in-scope rejection."""
    rng = np.random.default_rng(1)
    train, labels = saved["clinc150/train"]
    dev, dev_labels = saved["clinc150/dev"]
    features, dev_features = pool(train), pool(dev)
    probes = {p[6:]: pool(saved[p][0]) for p in saved if p.startswith("probe/")}
    intents = [c for c in np.unique(labels) if c != "oos" and (labels == c).sum() >= 20]
    results: dict[tuple[str, str], list[tuple[float, list[float]]]] = {}
    for _ in tqdm(range(trials), desc="small tasks", leave=False):
        pick = list(rng.choice(intents, 3, replace=False))
        rows = np.concatenate([rng.choice(np.flatnonzero(labels == c), 20, replace=False) for c in pick])
        for name, f in (("raw", lambda v: v), ("unit length", unit)):
            x, y = f(features[rows]), labels[rows]
            scores, stats = cross_fit_distances(x, y), fit_gaussian(x, y)
            for curve in (DistanceCalibration.empirical(scores, ""), DistanceCalibration.log_normal(scores, "")):
                threshold = curve.threshold(0.01) if curve.tail else threshold_for(0.01, len(scores))
                rate = lambda v: 100 * float((curve.p_value(stats.distances(f(v))) < threshold).mean())  # noqa: E731,B023
                results.setdefault((name, curve.tail or "empirical"), []).append(
                    (rate(dev_features[np.isin(dev_labels, pick)]), [rate(v) for v in probes.values()]))
    print("| features | curve | in-scope dev turned away | median source caught | worst source caught | tasks with median >= 80 |")
    for (name, curve), rows in results.items():
        medians = [float(np.median(s)) for _, s in rows]
        print(f"| {name} | {curve} | {np.mean([d for d, _ in rows]):.2f} | {np.mean(medians):.1f} | {np.mean([min(s) for _, s in rows]):.1f} | {sum(m >= 80 for m in medians)}/{len(rows)} |")


def main() -> None:
    run_experiment(__doc__, cache, {"tokens": tokens_vs_pooled, "unit": raw_vs_unit, "small": small_tasks}, lambda path: pickle.loads(path.read_bytes()))


if __name__ == "__main__":
    main()
