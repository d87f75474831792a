"""Does a pair task from two embeddings gain from u/v features beyond the cosine? (issue #27 item 4)
STS-B and MRPC, every training pair to fit (least squares / logistic, features standardised on train),
scored on dev with the task's metric. The embeddings come from a running service's /v1/embeddings (the
served int8 graphs in ONNX Runtime). Run from the repository root against a service on models/default:
    ASPNETCORE_URLS=http://127.0.0.1:5291 dotnet run --project src/MultiTaskBert.Api &
    /usr/bin/python3 bench/experiments/pair_features.py
"""
import json
import sys
import urllib.request

import numpy as np

sys.path.insert(0, "training")
from pathlib import Path  # noqa: E402

from mtbert import metrics  # noqa: E402
from mtbert.embedding_eval import _rows  # noqa: E402
from mtbert.pair_source import fit_least_squares, fit_logistic  # noqa: E402

BASE, DATA = "http://127.0.0.1:5291", Path("../shared/data")


def embed(texts: list[str]) -> np.ndarray:
    rows = []
    for start in range(0, len(texts), 64):
        body = json.dumps({"model": "embedding", "input": texts[start:start + 64]}).encode()
        request = urllib.request.Request(BASE + "/v1/embeddings", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            rows += [d["embedding"] for d in json.loads(response.read())["data"]]
    return np.array(rows, np.float64)


def features(u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    cos = np.sum(u * v, axis=1)
    diff = np.abs(u - v)
    return {"cos": cos, "cos2": cos ** 2, "l1": diff.sum(1), "linf": diff.max(1)}


SETS = {"cosine": ["cos"], "cosine + cosine²": ["cos", "cos2"], "cosine, cosine², L1, L∞ of u − v": ["cos", "cos2", "l1", "linf"]}

for task, metric in (("stsb", "pearson_spearman"), ("mrpc", "f1_acc")):
    split = {s: _rows(DATA, task, s) for s in ("train", "dev")}
    f = {s: features(embed([r["text"] for r in rows]), embed([r["text_pair"] for r in rows])) for s, rows in split.items()}
    gold = {s: np.array([float(r["label"]) for r in rows]) for s, rows in split.items()}
    for name, keys in SETS.items():
        x = {s: np.stack([f[s][k] for k in keys], 1) for s in f}
        mean, std = x["train"].mean(0), x["train"].std(0)
        x = {s: (v - mean) / std for s, v in x.items()}
        w, b = (fit_least_squares if task == "stsb" else fit_logistic)(x["train"], gold["train"])
        z = x["dev"] @ w + b
        predicted = np.clip(z, 0, 5) if task == "stsb" else (z > 0).astype(int)
        scores = metrics.compute(metric, predicted, gold["dev"] if task == "stsb" else gold["dev"].astype(int))
        print(f"{task} ({len(gold['train'])} train pairs), {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()), flush=True)
