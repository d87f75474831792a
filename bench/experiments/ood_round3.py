"""Out-of-domain measure, third round: which trunk layer's pooled features, for tasks of a few dozen
rows (an own CSV) and for the recipe's intent tasks; the last layer's mean is all-MiniLM's sentence
embedding, which the bundle's embedding task already serves (bench/experiments/README.md).

    cd training
    /usr/bin/python3 ../bench/experiments/ood_round3.py cache --out /tmp/ood-layers.npz   # mean of layers 3..6
    /usr/bin/python3 ../bench/experiments/ood_round3.py small /tmp/ood-layers.npz         # 60-row tasks
    /usr/bin/python3 ../bench/experiments/ood_round3.py large /tmp/ood-layers.npz         # the four intent tasks
    /usr/bin/python3 ../bench/experiments/ood_round3.py ensemble /tmp/ood-layers.npz      # layers combined, 60-row tasks
    /usr/bin/python3 ../bench/experiments/ood_round3.py tradeoff /tmp/ood-layers.npz      # 60-row tasks: the rate aimed at
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import NormalDist
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mtbert.checkpoint import load_checkpoint  # noqa: E402
from mtbert.ood import DistanceCalibration, cross_fit_distances, fit_gaussian  # noqa: E402
from mtbert.tokenization import WordPieceTokenizer  # noqa: E402
from mtbert.train import build_trunk, length_batches, pad_ids  # noqa: E402
from ood_features import INTENTS, PROBES, read, run_experiment  # noqa: E402

LAYERS = (3, 4, 5, 6)
SELF = {"banking77": "banking", "atis": "flights", "snips": "assistant", "clinc150": "clinc_oos"}
ASSISTANT = ("banking", "flights", "assistant", "clinc_oos")  # other *assistant* requests, the hard sources


def cache(args: argparse.Namespace) -> None:
    """Unit-length mean-pooled states of layers 3..6 (the trunk's weights at float16 precision, its
    matmuls in float: the int8 rounding moves pooled features by far less than the gaps measured here)
    of each intent task's train (seeded 4,000) and dev texts and of the ten probe sources (500 each)."""
    torch.set_num_threads(2)
    checkpoint = load_checkpoint(args.pretrained)
    trunk = build_trunk(checkpoint, 6, int8_matmuls=False)
    tokenizer = WordPieceTokenizer.from_file(checkpoint.vocab_path, max_length=128)
    saved: dict[str, np.ndarray] = {}

    def pooled(texts: list[str], key: str) -> None:
        encodings = [tokenizer.encode(t) for t in texts]
        out = {layer: np.zeros((len(texts), checkpoint.config.hidden_size), np.float32) for layer in LAYERS}
        with torch.no_grad():
            for batch in tqdm(length_batches([len(e.input_ids) for e in encodings], 128, None), desc=key, leave=False):
                ids, mask, types = pad_ids([encodings[i] for i in batch])
                states = trunk(ids, mask, types)
                weights = mask.unsqueeze(-1).float()
                for layer in LAYERS:
                    out[layer][batch] = ((states[layer] * weights).sum(1) / weights.sum(1)).numpy()
        for layer in LAYERS:
            saved[f"{key}/{layer}"] = out[layer] / np.linalg.norm(out[layer], axis=1, keepdims=True)

    for task in INTENTS:
        for split in ("train", "dev"):
            texts, labels = read(args.data, task, split, 4000 if split == "train" else None)
            pooled(texts, f"{task}/{split}")
            saved[f"{task}/{split}/labels"] = np.array(labels)
    for probe, (task, split, _) in PROBES.items():
        texts, labels = read(args.data, task, split, None if probe == "clinc_oos" else 500)
        if probe == "clinc_oos":
            texts = [t for t, label in zip(texts, labels) if label == "oos"]
        pooled(texts, f"probe/{probe}")
    np.savez_compressed(args.out, **saved)


Scorer = Callable[[np.ndarray], np.ndarray]


def mahalanobis(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Scorer]:
    """Cross-fitted in-scope distances and the scorer fitted on all rows (what `bundle calibrate` does)."""
    stats = fit_gaussian(x, y)
    return cross_fit_distances(x, y), stats.distances


def nearest_cosine(x: np.ndarray, y: np.ndarray, k: int = 1) -> tuple[np.ndarray, Scorer]:
    """1 - mean cosine to the k nearest training rows; cross-fitted as 5 folds."""
    def fit(train: np.ndarray) -> Scorer:
        return lambda v: 1 - np.sort(v @ train.T, axis=1)[:, -k:].mean(1)
    folds = np.random.default_rng(0).permutation(len(x)) % 5
    held = np.zeros(len(x), np.float32)
    for f in range(5):
        held[folds == f] = fit(x[folds != f])(x[folds == f])
    return held, fit(x)


MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, Scorer]]] = {
    "Mahalanobis": mahalanobis,
    "nearest cosine": nearest_cosine,
    "3 nearest cosine": lambda x, y: nearest_cosine(x, y, 3),
}


def small_tasks(saved: dict, trials: int = 30) -> list[tuple[list[str], np.ndarray]]:
    """Tasks of 3 random CLINC150 intents: each task's intents and its 20 training rows per intent."""
    rng = np.random.default_rng(1)
    labels = saved["clinc150/train/labels"]
    intents = [c for c in np.unique(labels) if c != "oos" and (labels == c).sum() >= 20]
    tasks = []
    for _ in range(trials):
        pick = list(rng.choice(intents, 3, replace=False))
        tasks.append((pick, np.concatenate([rng.choice(np.flatnonzero(labels == c), 20, replace=False) for c in pick])))
    return tasks


def report_row(cells: list[str], dev_rates: list[float], sources: list[dict[str, float]]) -> None:
    """A table row: mean in-scope dev turned away, assistant sources' median and worst, others' median."""
    assistant = [[s[p] for p in ASSISTANT] for s in sources]
    others = [[v for p, v in s.items() if p not in ASSISTANT] for s in sources]
    print(f"| {' | '.join(cells)} | {np.mean(dev_rates):.2f} | {np.mean([np.median(a) for a in assistant]):.1f} / {np.mean([min(a) for a in assistant]):.1f} "
          f"| {np.mean([np.median(o) for o in others]):.1f} | {sum(min(s.values()) >= 80 for s in sources)}/{len(sources)} |", flush=True)


HEADER = "in-scope dev turned away | assistant sources caught (median / worst) | other sources median | tasks with every source >= 80 |"


def probes_of(saved: dict) -> list[str]:
    return sorted({k.split("/")[1] for k in saved if k.startswith("probe/")})


def small(saved: dict) -> None:
    """60-row tasks, log-normal curve, 1% in-scope aimed at: each layer and measure."""
    labels, dev_labels = saved["clinc150/train/labels"], saved["clinc150/dev/labels"]
    print("| layer | measure | " + HEADER)
    for layer in LAYERS:
        train, dev = saved[f"clinc150/train/{layer}"], saved[f"clinc150/dev/{layer}"]
        for name, measure in MEASURES.items():
            dev_rates, sources = [], []
            for pick, rows in small_tasks(saved):
                held, score = measure(train[rows], labels[rows])
                curve = DistanceCalibration.log_normal(held, "")
                rate = lambda v: 100 * float((curve.p_value(score(v)) < curve.threshold(0.01)).mean())  # noqa: E731,B023
                dev_rates.append(rate(dev[np.isin(dev_labels, pick)]))
                sources.append({p: rate(saved[f"probe/{p}/{layer}"]) for p in probes_of(saved)})
            report_row([str(layer), name], dev_rates, sources)


def ensemble(saved: dict) -> None:
    """60-row tasks: Mahalanobis of several layers combined (mean of each layer's standardised
    log-distance, standardised on its cross-fitted distances), a normal fitted to the combination."""
    labels, dev_labels = saved["clinc150/train/labels"], saved["clinc150/dev/labels"]
    print("| layers | " + HEADER)
    for layers in ((4,), (3, 4), (4, 5), (3, 4, 5), (3, 4, 5, 6)):
        dev_rates, sources = [], []
        for pick, rows in small_tasks(saved):
            fitted, standardised = [], []
            for layer in layers:
                held = np.log(cross_fit_distances(saved[f"clinc150/train/{layer}"][rows], labels[rows]))
                fitted.append((layer, fit_gaussian(saved[f"clinc150/train/{layer}"][rows], labels[rows]), held.mean(), held.std()))
                standardised.append((held - held.mean()) / held.std())
            held = np.mean(standardised, axis=0)
            cut = held.mean() + NormalDist().inv_cdf(0.99) * held.std(ddof=1)

            def rate(key: str, keep: np.ndarray | None = None) -> float:
                combined = np.mean([(np.log(stats.distances(saved[f"{key}/{layer}"] if keep is None else saved[f"{key}/{layer}"][keep])) - mu) / sd
                                    for layer, stats, mu, sd in fitted], axis=0)  # noqa: B023
                return 100 * float((combined > cut).mean())  # noqa: B023
            dev_rates.append(rate("clinc150/dev", np.isin(dev_labels, pick)))
            sources.append({p: rate(f"probe/{p}") for p in probes_of(saved)})
        report_row(["+".join(map(str, layers))], dev_rates, sources)


def tradeoff(saved: dict) -> None:
    """60-row tasks, layer 4, log-normal curve: the in-scope rejection rate aimed at (`--rejection`)
    against what it turns away; and, for scale, the cut at each task's own 99th dev percentile."""
    labels, dev_labels = saved["clinc150/train/labels"], saved["clinc150/dev/labels"]
    train, dev = saved["clinc150/train/4"], saved["clinc150/dev/4"]
    print("| rate aimed at | " + HEADER)
    for target in (0.01, 0.02, 0.03, 0.05, "dev"):
        dev_rates, sources = [], []
        for pick, rows in small_tasks(saved):
            held, score = mahalanobis(train[rows], labels[rows])
            in_scope = score(dev[np.isin(dev_labels, pick)])
            if target == "dev":
                cut = float(np.quantile(in_scope, 0.99))
                fires: Callable[[np.ndarray], np.ndarray] = lambda d: d > cut  # noqa: E731,B023
            else:
                curve = DistanceCalibration.log_normal(held, "")
                fires = lambda d: curve.p_value(d) < curve.threshold(target)  # noqa: E731,B023
            dev_rates.append(100 * float(fires(in_scope).mean()))
            sources.append({p: 100 * float(fires(score(saved[f"probe/{p}/4"])).mean()) for p in probes_of(saved)})
        report_row([f"{100 * target:.0f}%" if target != "dev" else "99th percentile of dev (tuned on it)"], dev_rates, sources)


def large(saved: dict) -> None:
    """The four intent tasks: Mahalanobis per layer, empirical curve (>= 1,000 examples), 1% aimed at."""
    probes = probes_of(saved)
    for task in INTENTS:
        labels = saved[f"{task}/train/labels"]
        for layer in LAYERS:
            held, score = mahalanobis(saved[f"{task}/train/{layer}"], labels)
            curve = DistanceCalibration.from_scores(held, "")
            threshold = curve.threshold(0.01)
            rate = lambda v: 100 * float((curve.p_value(score(v)) < threshold).mean())  # noqa: E731,B023
            sources = {p: rate(saved[f"probe/{p}/{layer}"]) for p in probes if p != SELF[task]}
            print(f"{task} layer {layer}: dev {rate(saved[f'{task}/dev/{layer}']):.2f} | worst {min(sources.values()):.1f} median {np.median(list(sources.values())):.1f} | "
                  + ", ".join(f"{p} {v:.0f}" for p, v in sources.items()), flush=True)


def main() -> None:
    run_experiment(__doc__, cache, {"small": small, "large": large, "ensemble": ensemble, "tradeoff": tradeoff}, lambda path: dict(np.load(path)))


if __name__ == "__main__":
    main()
