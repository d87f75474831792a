"""How far an int8 trunk's rounding flips move a bundle's logits (an experiment, see README.md).

For dev texts of the bundle's single-sentence tasks, short ones and ones past the maximum length,
the trunk runs twice: in PyTorch as the toolkit builds it (`build_trunk`: the parity reference)
and as the exported graph, evaluated exactly (`mtbert.onnx_eval`: integer matmuls summed as ONNX
Runtime does). The same ONNX heads then read both hidden states, so every difference comes from
the trunk. Prints per text the largest logit difference over the heads, then the spread, the
top-1 disagreements and the largest softmax difference.

  PYTHONPATH=training /usr/bin/python3 bench/experiments/int8_parity_spread.py models/default ../shared/data ../shared/pretrained/all-minilm-l6-v2
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mtbert.checkpoint import load_checkpoint
from mtbert.onnx_eval import Graph
from mtbert.tokenization import WordPieceTokenizer, read_vocab
from mtbert.train import build_trunk


def texts_of(data: Path, tasks: list[str], per_task: int, long_per_task: int, seed: int) -> list[tuple[str, str]]:
    """(kind, text): `per_task` dev texts of each task, and `long_per_task` of 12 dev texts joined (past 128 tokens)."""
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    for task in tasks:
        lines = [json.loads(line)["text"] for line in (data / task / "dev.jsonl").open(encoding="utf-8")]
        chosen += [("short", text) for text in rng.sample(lines, per_task)]
        chosen += [("long", " ".join(rng.sample(lines, 12))) for _ in range(long_per_task)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("pretrained", type=Path)
    parser.add_argument("--tasks", default="atis,banking77,sst2,snips", help="tasks whose dev texts are used")
    parser.add_argument("--per-task", type=int, default=15)
    parser.add_argument("--long-per-task", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    t = manifest["tokenizer"]
    tokenizer = WordPieceTokenizer(read_vocab(args.bundle / t["vocabFile"]), lowercase=t["lowercase"],
                                   strip_accents=t["stripAccents"], max_length=t["maxSequenceLength"])
    trunk_graph = Graph(args.bundle / manifest["trunk"]["file"])
    trunk = build_trunk(load_checkpoint(args.pretrained), manifest["trunk"]["numLayers"], manifest["trunk"].get("int8Matmuls", False))
    heads = {task["name"]: (Graph(args.bundle / task["head"]["file"]), task["branchLayer"])
             for task in manifest["tasks"] if task.get("input", "single") == "single" and task["output"]["kind"] == "classification"}
    spread: dict[str, list[float]] = {"short": [], "long": []}
    disagreements, compared, probability_gap = 0, 0, 0.0
    for kind, text in tqdm(texts_of(args.data, args.tasks.split(","), args.per_task, args.long_per_task, args.seed), desc="texts"):
        encoding = tokenizer.encode(text, None)
        ids = torch.tensor([encoding.input_ids])
        types = torch.tensor([encoding.token_type_ids])
        mask = torch.ones_like(ids)
        graph_hidden = trunk_graph.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        with torch.no_grad():
            torch_hidden = trunk(ids, mask, types)
        worst = 0.0
        for head, layer in heads.values():
            served = head.run({"hidden_states": graph_hidden[f"hidden_{layer}"], "attention_mask": mask})["logits"]
            reference = head.run({"hidden_states": torch_hidden[layer], "attention_mask": mask})["logits"]
            worst = max(worst, float((served - reference).abs().max()))
            probability_gap = max(probability_gap, float((served.softmax(-1) - reference.softmax(-1)).abs().max()))
            disagreements += int(served.argmax() != reference.argmax())
            compared += 1
        spread[kind].append(worst)
        tqdm.write(f"{kind}\t{len(encoding.input_ids)} tokens\tmax |logit diff| {worst:.5f}")
    for kind, values in spread.items():
        v = np.array(values)
        print(f"{kind}: {len(v)} texts, largest logit difference per text: median {np.median(v):.2g}, p90 {np.quantile(v, 0.9):.2f}, max {v.max():.2f}")
    print(f"top-1 disagreements: {disagreements} of {compared} (text, head) pairs; largest softmax difference {probability_gap:.3f}")


if __name__ == "__main__":
    main()
