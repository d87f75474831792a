"""ONNX export of trunks, heads and whole single-task models.

Uses the TorchScript-based exporter explicitly (`dynamo=False` where PyTorch 2.x offers the
choice), opset 14, dynamic batch and sequence axes. Weights are stored as float16 initialisers
followed by a Cast to float32, which ONNX Runtime folds at load: files half the size, float32 math.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .modeling import ExportedHead, ExportedTrunk, SingleTaskModel, TaskHead, Trunk

OPSET = 14
# Initialisers smaller than this stay float32: casting them saves nothing worth a node.
FP16_MIN_ELEMENTS = 256


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str], output_names: list[str], dynamic_axes: dict) -> onnx.ModelProto:
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # PyTorch 2.x: keep the TorchScript exporter
    buffer = io.BytesIO()
    module.eval()
    with torch.no_grad():
        torch.onnx.export(
            module, args, buffer, input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
            opset_version=OPSET, do_constant_folding=True, **kwargs,
        )
    return onnx.load_from_string(buffer.getvalue())


def store_weights_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replaces each large float32 initialiser W by a float16 copy and a `Cast(W_fp16) -> W` node."""
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= FP16_MIN_ELEMENTS:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "_widen"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return model


def _save(model: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model = store_weights_fp16(model)
    model.producer_name = "mtbert"
    # Stable bytes: the same weights always give the same file (and hash).
    model.producer_version = ""
    path.write_bytes(model.SerializeToString())


def _example_ids(batch: int = 2, seq: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = torch.full((batch, seq), 1000, dtype=torch.long)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, -2:] = 0
    return ids, mask, torch.zeros(batch, seq, dtype=torch.long)


ID_AXES = {0: "batch", 1: "sequence"}


def export_trunk(trunk: Trunk, output_layers: list[int], path: Path) -> list[dict]:
    """Writes the trunk with one output `hidden_<layer>` per branch layer; returns manifest entries."""
    names = [f"hidden_{layer}" for layer in output_layers]
    model = _export(
        ExportedTrunk(trunk, output_layers), _example_ids(), ["input_ids", "attention_mask", "token_type_ids"], names,
        {"input_ids": ID_AXES, "attention_mask": ID_AXES, "token_type_ids": ID_AXES, **{n: ID_AXES for n in names}},
    )
    _save(model, path)
    return [{"layer": layer, "name": name} for layer, name in zip(output_layers, names)]


def export_head(head: TaskHead, path: Path) -> None:
    hidden = torch.randn(2, 7, head.config.hidden_size)
    mask = _example_ids()[1]
    output_axes = ID_AXES if head.kind == "tagging" else {0: "batch"}
    model = _export(
        ExportedHead(head), (hidden, mask), ["hidden_states", "attention_mask"], ["logits"],
        {"hidden_states": ID_AXES, "attention_mask": ID_AXES, "logits": output_axes},
    )
    _save(model, path)


def export_single_task(model: SingleTaskModel, path: Path) -> None:
    output_axes = ID_AXES if model.head.kind == "tagging" else {0: "batch"}
    onnx_model = _export(
        model, _example_ids(), ["input_ids", "attention_mask", "token_type_ids"], ["logits"],
        {"input_ids": ID_AXES, "attention_mask": ID_AXES, "token_type_ids": ID_AXES, "logits": output_axes},
    )
    _save(onnx_model, path)
