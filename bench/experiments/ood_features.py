"""Caches what the out-of-domain comparison reads: pooled trunk features (layers 4 and 5, mean over
tokens and [CLS]) of every intent task's train and dev texts and of other-domain probe texts, and
each intent head's logits on dev and probes, from the served default bundle (int8 trunk simulated
exactly in PyTorch, heads through the ONNX evaluator).

    cd training && /usr/bin/python3 ../bench/experiments/ood_features.py --out /tmp/ood-features.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
from mtbert.checkpoint import load_checkpoint  # noqa: E402
from mtbert.onnx_eval import Graph  # noqa: E402
from mtbert.tokenization import WordPieceTokenizer  # noqa: E402
from mtbert.train import build_trunk, length_batches, pad_ids  # noqa: E402

INTENTS = ("banking77", "clinc150", "snips", "atis")
PROBES = {  # other-domain sources (dev splits), each apart
    "banking": ("banking77", "dev", "text"), "flights": ("atis", "dev", "text"), "assistant": ("snips", "dev", "text"),
    "clinc_oos": ("clinc150", "dev", "text"), "news": ("mrpc", "dev", "text"), "captions": ("stsb", "dev", "text"),
    "movies": ("sst2", "dev", "text"), "linguistics": ("cola", "dev", "text"), "questions": ("qnli", "dev", "text"),
    "fiction": ("mnli", "dev", "text"),
}


def run_experiment(
    doc: str | None, cache: Callable[[argparse.Namespace], None], analyses: dict[str, Callable[[Any], None]], load: Callable[[Path], Any],
    cache_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line of an experiment that caches features once (`cache --out FILE`, with --data and
    --pretrained, and what `cache_arguments` adds) and analyses the cache (`ANALYSIS FILE`: the analysis gets `load(FILE)`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cache")
    p.add_argument("--data", type=Path, default=Path("../../shared/data"))
    p.add_argument("--pretrained", type=Path, default=Path("../../shared/pretrained/all-minilm-l6-v2"))
    p.add_argument("--out", type=Path, required=True)
    if cache_arguments is not None:
        cache_arguments(p)
    for name in analyses:
        sub.add_parser(name).add_argument("cache_file", type=Path)
    args = parser.parse_args()
    if args.command == "cache":
        cache(args)
    else:
        analyses[args.command](load(args.cache_file))


def read(data: Path, task: str, split: str, limit: int | None = None) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (data / task / f"{split}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit and len(rows) > limit:
        keep = sorted(np.random.default_rng(0).choice(len(rows), limit, replace=False))
        rows = [rows[i] for i in keep]
    return [r["text"] for r in rows], [str(r.get("label")) for r in rows]


def pooled(trunk: torch.nn.Module, tokenizer: WordPieceTokenizer, texts: list[str], desc: str) -> dict[str, np.ndarray]:
    encodings = [tokenizer.encode(t) for t in texts]
    out = {k: np.zeros((len(texts), 384), np.float32) for k in ("mean4", "mean5", "cls5")}
    states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    with torch.no_grad():
        for batch in tqdm(length_batches([len(e.input_ids) for e in encodings], 128, None), desc=desc, leave=False):
            ids, mask, types = pad_ids([encodings[i] for i in batch])
            layers = trunk(ids, mask, types)
            m = mask.unsqueeze(-1).float()
            for name, layer in (("mean4", 4), ("mean5", 5)):
                out[name][batch] = ((layers[layer] * m).sum(1) / m.sum(1)).numpy()
            out["cls5"][batch] = layers[5][:, 0].numpy()
            for row, i in enumerate(batch):
                states[i] = layers[5][row, : int(mask[row].sum())], layers[4][row, : int(mask[row].sum())]
    out["_states"] = states  # type: ignore[assignment]
    return out


def head_logits(graph: Graph, layer: int, states: list, batch_size: int = 256) -> np.ndarray:
    rows = []
    for start in range(0, len(states), batch_size):
        chunk = [s[0] if layer == 5 else s[1] for s in states[start : start + batch_size]]
        width = max(c.shape[0] for c in chunk)
        hidden = torch.zeros(len(chunk), width, 384)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for r, c in enumerate(chunk):
            hidden[r, : c.shape[0]] = c
            mask[r, : c.shape[0]] = 1
        rows.append(graph.run({"hidden_states": hidden, "attention_mask": mask})["logits"].numpy())
    return np.concatenate(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path, default=Path("../models/default"))
    parser.add_argument("--data", type=Path, default=Path("../../shared/data"))
    parser.add_argument("--pretrained", type=Path, default=Path("../../shared/pretrained/all-minilm-l6-v2"))
    parser.add_argument("--probe-limit", type=int, default=500)
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    checkpoint = load_checkpoint(args.pretrained)
    trunk = build_trunk(checkpoint, 5, int8_matmuls=True)
    tokenizer = WordPieceTokenizer.from_file(checkpoint.vocab_path, max_length=128)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    tasks = {t["name"]: t for t in manifest["tasks"]}
    saved: dict[str, np.ndarray] = {}
    sets: dict[str, list] = {}
    for task in INTENTS:
        for split in ("train", "dev"):
            texts, labels = read(args.data, task, split, args.train_limit if split == "train" else None)
            features = pooled(trunk, tokenizer, texts, f"{task} {split}")
            sets[f"{task}/{split}"] = features.pop("_states")  # type: ignore[arg-type]
            saved.update({f"{task}/{split}/{k}": v for k, v in features.items()})
            saved[f"{task}/{split}/labels"] = np.array(labels)
    for probe, (task, split, _) in PROBES.items():
        texts, labels = read(args.data, task, split, args.probe_limit)
        if probe == "clinc_oos":
            texts = [t for t, l in zip(*read(args.data, task, split)) if l == "oos"]
        features = pooled(trunk, tokenizer, texts, f"probe {probe}")
        sets[f"probe/{probe}"] = features.pop("_states")  # type: ignore[arg-type]
        saved.update({f"probe/{probe}/{k}": v for k, v in features.items()})
    for task in INTENTS:
        entry = tasks[task]
        graph = Graph(args.bundle / entry["head"]["file"])
        saved[f"{task}/labelnames"] = np.array(entry["output"]["labels"])
        for name, states in sets.items():
            if name.startswith(f"{task}/dev") or name.startswith("probe/"):
                saved[f"logits/{task}/{name}"] = head_logits(graph, entry["branchLayer"], states)
    np.savez_compressed(args.out, **saved)
    print(f"wrote {args.out}: {len(saved)} arrays")


if __name__ == "__main__":
    main()
