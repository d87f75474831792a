"""Measures a bundle's embedding task held-out (`mtbert embedding-eval`): agreement with the float32
checkpoint, a Banking77 task from k examples per label (nearest centroid vs k-nearest examples), and
the pair tasks STS-B and MRPC from the cosine of two embeddings. Every sample is seeded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint
from .embedding import ServedEmbedder, bundle_tokenizer, evaluate_examples, fit_examples, flatten_examples, reference_embeddings
from .manifest_file import int8_matmuls, read_manifest
from .metrics import f1_binary, pearson, spearman

AGREEMENT_TASKS = ("sst2", "snips", "banking77", "clinc150", "cola", "stsb", "mrpc")


def _rows(data: Path, task: str, split: str) -> list[dict]:
    with (data / task / f"{split}.jsonl").open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def agreement_texts(data: Path, per_task: int, seed: int) -> list[str]:
    """A seeded sample of dev texts (both sides of pairs) of several tasks, deduplicated."""
    rng, texts = random.Random(seed), []
    for task in AGREEMENT_TASKS:
        if (data / task / "dev.jsonl").is_file():
            rows = _rows(data, task, "dev")
            texts += [t for r in rng.sample(rows, min(per_task, len(rows))) for t in (r["text"], r.get("text_pair")) if t]
    return list(dict.fromkeys(texts))


def sample_examples(rows: list[dict], per_label: int, seed: int) -> dict[str, list[str]]:
    """`per_label` seeded training examples of each label."""
    by_label: dict[str, list[str]] = {}
    for row in rows:
        by_label.setdefault(str(row["label"]), []).append(row["text"])
    rng = random.Random(seed)
    return {label: rng.sample(texts, min(per_label, len(texts))) for label, texts in sorted(by_label.items())}


def measure(bundle: Path, pretrained: str | Path, data: Path, per_task: int = 150, shots: tuple[int, ...] = (10, 5), seed: int = 0, log=print) -> dict:  # noqa: ANN001
    manifest = read_manifest(bundle)
    task = next(t for t in manifest["tasks"] if t["output"]["kind"] == "embedding")
    checkpoint = load_checkpoint(pretrained)
    tokenizer = bundle_tokenizer(bundle, manifest)
    served = ServedEmbedder(checkpoint, tokenizer, task["branchLayer"], int8_matmuls(manifest))
    result: dict = {"bundle": f"{manifest['name']}@{manifest['version']}", "task": task["name"], "seed": seed}

    texts = agreement_texts(data, per_task, seed)
    cosines = np.sum(served.embed(texts) * reference_embeddings(checkpoint, tokenizer, texts), axis=1)
    result["agreement"] = {"texts": len(texts), "meanCosine": float(cosines.mean()), "minCosine": float(cosines.min())}
    log(f"agreement with float32 {checkpoint.name} over {len(texts)} dev texts: mean cosine {cosines.mean():.5f}, min {cosines.min():.5f}")

    if (data / "banking77").is_dir():
        train, dev = _rows(data, "banking77", "train"), _rows(data, "banking77", "dev")
        dev_vectors = served.embed([r["text"] for r in dev])
        gold = [str(r["label"]) for r in dev]
        for k in shots:
            labels, example_texts, owners = flatten_examples(sample_examples(train, k, seed))
            vectors = served.embed(example_texts)
            model = fit_examples(vectors, labels, owners)
            scores = {"centroid": evaluate_examples(model, dev_vectors, gold)}
            for neighbours in (1, 3, 5):
                scores[f"knn{neighbours}"] = evaluate_examples(model, dev_vectors, gold, neighbours, vectors, owners)
            result[f"banking77_{k}shot"] = scores | {"split": "dev", "fallbackThreshold": model.threshold}
            log(f"banking77, {k} examples per label, dev accuracy: " + ", ".join(f"{name} {value:.1f}" for name, value in scores.items()))

    for pair_task in ("stsb", "mrpc"):
        if not (data / pair_task).is_dir():
            continue
        dev = _rows(data, pair_task, "dev")
        similarity = np.sum(served.embed([r["text"] for r in dev]) * served.embed([r["text_pair"] for r in dev]), axis=1)
        gold = np.array([float(r["label"]) for r in dev])
        if pair_task == "stsb":
            result["stsb"] = {"split": "dev", "pearson": pearson(similarity, gold), "spearman": spearman(similarity, gold)}
        else:
            # The cosine threshold is chosen on (a seeded sample of) train, scored on dev.
            train = random.Random(seed).sample(_rows(data, "mrpc", "train"), 500)
            train_similarity = np.sum(served.embed([r["text"] for r in train]) * served.embed([r["text_pair"] for r in train]), axis=1)
            train_gold = np.array([int(r["label"]) for r in train])
            threshold = max(np.unique(train_similarity), key=lambda t: float(np.mean((train_similarity >= t) == train_gold)))
            predicted = (similarity >= threshold).astype(int)
            result["mrpc"] = {"split": "dev", "threshold": float(threshold), "accuracy": float(np.mean(predicted == gold) * 100), "f1": f1_binary(predicted, gold.astype(int))}
        log(f"{pair_task} from the cosine of two embeddings (dev): {result[pair_task]}")
    return result
