"""The deployment a bundle replaces, for the benchmark: one whole BERT per task.

Each baseline is the full L-layer network (embeddings, every encoder layer computed for every
token, the task's output layer on [CLS]), i.e. the shape of that task's fully fine-tuned model.
Serving cost depends only on that shape, so the layers carry the pretrained weights and the
output layer is freshly initialised with the task's width: the figures measure cost, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm import tqdm

from .bundle import int8_matmuls, read_manifest
from .checkpoint import load_checkpoint
from .export import export_single_task
from .modeling import SingleTaskModel, TaskHead
from .train import build_trunk

BASELINES_FILE = "baselines.json"


def _output_width(output: dict) -> tuple[str, int]:
    kind = output["kind"]
    if kind == "classification":
        return kind, len(output["labels"])
    if kind == "tagging":
        return kind, len(output["tags"])
    return kind, 1


def export_baselines(bundle: Path, out: Path, pretrained: Path) -> dict:
    manifest = read_manifest(bundle)
    checkpoint = load_checkpoint(pretrained)
    expected = manifest["trunk"]["pretrained"]["fingerprint"]
    if checkpoint.fingerprint != expected:
        raise ValueError(f"{pretrained}: fingerprint {checkpoint.fingerprint[:12]}… is not the bundle trunk's ({expected[:12]}…)")
    layers = checkpoint.config.num_hidden_layers
    # Like for like: a bundle with int8 trunk matmuls is compared with baselines whose every layer is int8.
    trunk = build_trunk(checkpoint, layers, int8_matmuls(manifest))
    out.mkdir(parents=True, exist_ok=True)
    index = {"layers": layers, "bundle": f"{manifest['name']}@{manifest['version']}", "int8Matmuls": int8_matmuls(manifest), "tasks": {}}
    for seed, task in enumerate(tqdm(manifest["tasks"], desc="baselines")):
        torch.manual_seed(seed)
        kind, width = _output_width(task["output"])
        head = TaskHead(checkpoint.config, 0, kind, width)  # reads layer L: the whole network below it
        export_single_task(SingleTaskModel(trunk, layers, head), out / f"{task['name']}.onnx")
        index["tasks"][task["name"]] = {"file": f"{task['name']}.onnx", "input": task["input"], "kind": kind}
    (out / BASELINES_FILE).write_text(json.dumps(index, indent=2), encoding="utf-8")
    return index
