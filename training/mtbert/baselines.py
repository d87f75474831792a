"""The deployment a bundle replaces, for the benchmark: one whole BERT per task.

Each baseline is the full L-layer network (embeddings, every encoder layer computed for every
token, the task's output layer on [CLS]), i.e. the shape of that task's fully fine-tuned model.
Serving cost depends only on that shape, so the layers carry the pretrained weights and the
output layer is freshly initialised with the task's width: the figures measure cost, not accuracy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
from onnx import TensorProto, external_data_helper, numpy_helper

import torch
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .export import ID_AXES, _example_ids, _export, export_single_task, logits_axes
from .float16 import FLOAT16_OPSET, dequantize_modules, to_float16_compute
from .kinds import kind_named
from .manifest_file import int8_matmuls, read_manifest
from .modeling import SingleTaskModel, TaskHead
from .train import build_trunk

BASELINES_FILE = "baselines.json"


SHARED_WEIGHTS = "weights.bin"


def export_baselines(bundle: Path, out: Path, pretrained: Path, float16: bool = False) -> dict:
    manifest = read_manifest(bundle)
    checkpoint = load_checkpoint(pretrained)
    expected = manifest["trunk"]["pretrained"]["fingerprint"]
    if checkpoint.fingerprint != expected:
        raise ValueError(f"{pretrained}: fingerprint {checkpoint.fingerprint[:12]}… is not the bundle trunk's ({expected[:12]}…)")
    layers = checkpoint.config.num_hidden_layers
    # Like for like: a bundle with int8 trunk matmuls is compared with baselines whose every layer is int8.
    # For CUDA (float16), the baselines compute in float16 as the bundle's float16 trunk does, with the same weights.
    trunk = build_trunk(checkpoint, layers, int8_matmuls(manifest))
    out.mkdir(parents=True, exist_ok=True)
    index = {"layers": layers, "bundle": f"{manifest['name']}@{manifest['version']}", "int8Matmuls": int8_matmuls(manifest) and not float16, "float16": float16, "tasks": {}}
    if float16:
        dequantize_modules(trunk)
        (out / SHARED_WEIGHTS).write_bytes(b"")
    for seed, task in enumerate(tqdm(manifest["tasks"], desc="baselines")):
        if task["output"]["kind"] in ("embedding", "examples"):
            continue  # not trained heads: the comparison is of the classification tasks
        torch.manual_seed(seed)
        kind = kind_named(task["output"]["kind"])
        head = TaskHead(checkpoint.config, 0, kind, kind.manifest_width(task["output"]))  # reads layer L: the whole network below it
        if float16:
            _export_float16(SingleTaskModel(trunk, layers, head), out, f"{task['name']}.onnx")
        else:
            export_single_task(SingleTaskModel(trunk, layers, head), out / f"{task['name']}.onnx")
        index["tasks"][task["name"]] = {"file": f"{task['name']}.onnx", "input": task["input"], "kind": kind.name}
    (out / BASELINES_FILE).write_text(json.dumps(index, indent=2), encoding="utf-8")
    return index


def _export_float16(model: SingleTaskModel, out: Path, file: str) -> None:
    """A float16 baseline whose tensors live in one weights file shared by every baseline of the
    folder (the bodies are the same network): twelve whole models then cost one body on disk, small
    enough to carry to a GPU machine. ONNX Runtime reads external data by offset."""
    names = ["input_ids", "attention_mask", "token_type_ids"]
    graph = to_float16_compute(_export(model, _example_ids(), names, ["logits"], {**{n: ID_AXES for n in names}, "logits": logits_axes(model.head)}, opset=FLOAT16_OPSET))
    index_path = out / (SHARED_WEIGHTS + ".json")
    offsets: dict[str, list[int]] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    with open(out / SHARED_WEIGHTS, "ab") as weights:
        for tensor in graph.graph.initializer:
            data = numpy_helper.to_array(tensor).tobytes()
            if len(data) < 4096:
                continue
            key = f"{tensor.name}:{hashlib.sha256(data).hexdigest()}"
            if key not in offsets:
                offsets[key] = [weights.tell(), len(data)]
                weights.write(data)
            external_data_helper.set_external_data(tensor, SHARED_WEIGHTS, offsets[key][0], offsets[key][1])
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
    index_path.write_text(json.dumps(offsets))
    graph.producer_name, graph.producer_version = "mtbert", ""
    onnx.save(graph, str(out / file))
