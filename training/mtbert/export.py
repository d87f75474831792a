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

from .modeling import ExportedHead, ExportedTrunk, RowwiseInt8Linear, SingleTaskModel, TaskHead, Trunk

OPSET = 14
# Initialisers smaller than this stay float32: casting them saves nothing worth a node.
FP16_MIN_ELEMENTS = 256


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str], output_names: list[str], dynamic_axes: dict, opset: int = OPSET) -> onnx.ModelProto:
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # PyTorch 2.x: keep the TorchScript exporter
    buffer = io.BytesIO()
    module.eval()
    with torch.no_grad():
        torch.onnx.export(
            module, args, buffer, input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
            opset_version=opset, do_constant_folding=True, **kwargs,
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


def quantize_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[in, out] MatMul weight -> int8 codes and one symmetric float32 scale per output column
    (as `RowwiseInt8Linear.weight_codes`, on the same float32 values), for a graph without its module."""
    scale = np.abs(weight).max(axis=0) / np.float32(127.0)
    scale[scale == 0] = 1.0
    return np.clip(np.rint(weight / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def quantize_matmuls_int8(model: onnx.ModelProto, weights: dict[bytes, tuple[np.ndarray, np.ndarray]]) -> int:
    """Rewrites each MatMul whose constant weight (float16 behind a Cast, as `store_weights_fp16`
    leaves it) is a key of `weights` (float16 bytes of the [in, out] matrix -> its int8 codes and
    per-column scales) to ONNX Runtime's integer matmul: the activation rows quantized to uint8 around 128 with one scale per row
    (`QuantizeLinear(axis=0)`; ONNX Runtime's fast integer GEMM wants unsigned activations), the
    weight with a scale per column (`com.microsoft.MatMulIntegerToFloat`), then the row scales.
    A row's result does not depend on the other rows, unlike `DynamicQuantizeMatMul`'s one scale per
    tensor. Returns how many were rewritten; the float16 weights they used are dropped.

    The codes are stored unsigned, code + 128 with a weight zero point of 128: the same integers
    (ONNX Runtime subtracts both zero points exactly), but the uint8 x uint8 kernels sum exactly on
    every x86 processor. The uint8 x int8 kernel of processors without VNNI (AVX2, AVX-512 without
    VNNI) adds pairs of products in saturating 16-bit lanes, which moved default@1.4.0's logits by up
    to 0.1 on such a machine."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    casts = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Cast" and n.input[0] in initializers}

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    shared = {
        "one": constant("int8/one", np.array(1.0, np.float32)),
        "127": constant("int8/127", np.array(127.0, np.float32)),
        "tiny": constant("int8/tiny", np.array(1e-12, np.float32)),
        "zero_point": constant("int8/zero_point", np.array(128, np.uint8)),
        "first": constant("int8/first", np.array([0], np.int64)),
        "last": constant("int8/last", np.array([-1], np.int64)),
    }
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        source = casts.get(node.input[1]) if node.op_type == "MatMul" else None
        stored = numpy_helper.to_array(initializers[source]) if source else None
        if stored is None or stored.ndim != 2 or stored.tobytes() not in weights:
            nodes.append(node)
            continue
        k, n = stored.shape
        codes, scales = weights[stored.tobytes()]
        p, x, y = f"int8/{count}", node.input[0], node.output[0]
        constant(f"{p}/codes", unsigned_codes(codes))
        constant(f"{p}/scales", scales)
        constant(f"{p}/rows", np.array([-1, k], np.int64))
        constant(f"{p}/n", np.array([n], np.int64))
        nodes += _int8_matmul_nodes(p, x, y, shared)
        count += 1
    replace_nodes(model, nodes)
    return count


def _int8_matmul_nodes(p: str, x: str, y: str, shared: dict[str, str]) -> list[onnx.NodeProto]:
    """The nodes that compute MatMul `x` -> `y` from the int8 weight stored under prefix `p`: the
    rows quantized around 128 with a scale each, the integer matmul, then the row scales and the
    input's leading shape back."""
    return [
        helper.make_node("Shape", [x], [f"{p}/shape"]),
        helper.make_node("Reshape", [x, f"{p}/rows"], [f"{p}/x"]),  # [rows, in]
        helper.make_node("ReduceMax", [f"{p}/x"], [f"{p}/max"], axes=[1], keepdims=0),
        helper.make_node("ReduceMin", [f"{p}/x"], [f"{p}/min"], axes=[1], keepdims=0),
        helper.make_node("Neg", [f"{p}/min"], [f"{p}/-min"]),
        helper.make_node("Max", [f"{p}/max", f"{p}/-min", shared["tiny"]], [f"{p}/absmax"]),
        helper.make_node("Div", [f"{p}/absmax", shared["127"]], [f"{p}/scale"]),  # one scale per row
        helper.make_node("Shape", [f"{p}/scale"], [f"{p}/rows_shape"]),
        helper.make_node("ConstantOfShape", [f"{p}/rows_shape"], [f"{p}/zero_points"],
                         value=helper.make_tensor("value", TensorProto.UINT8, [1], [128])),
        helper.make_node("QuantizeLinear", [f"{p}/x", f"{p}/scale", f"{p}/zero_points"], [f"{p}/xq"], axis=0),
        helper.make_node("MatMulIntegerToFloat", [f"{p}/xq", f"{p}/codes", shared["one"], f"{p}/scales", shared["zero_point"], shared["zero_point"]],
                         [f"{p}/acc"], domain="com.microsoft"),
        helper.make_node("Unsqueeze", [f"{p}/scale", shared["last"]], [f"{p}/row_scale"]),
        helper.make_node("Mul", [f"{p}/acc", f"{p}/row_scale"], [f"{p}/y"]),
        helper.make_node("Slice", [f"{p}/shape", shared["first"], shared["last"]], [f"{p}/lead"]),
        helper.make_node("Concat", [f"{p}/lead", f"{p}/n"], [f"{p}/out_shape"], axis=0),
        helper.make_node("Reshape", [f"{p}/y", f"{p}/out_shape"], [y]),
    ]


def replace_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> None:
    """Makes `nodes` the graph's nodes after a rewrite that replaced some of them: drops the Casts
    (and their float16 weights) and the initializers no node reads any more, and imports the
    `com.microsoft` domain when a new node uses it."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    used = {name for n in nodes for name in n.input}
    nodes = [n for n in nodes if not (n.op_type == "Cast" and n.input[0] in initializers and n.output[0] not in used)]
    used = {name for n in nodes for name in n.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if any(n.domain == "com.microsoft" for n in nodes) and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def unsigned_codes(codes: np.ndarray) -> np.ndarray:
    """int8 weight codes (-127..127) as stored in a graph: uint8, code + 128 (zero point 128)."""
    return (codes.astype(np.int16) + 128).astype(np.uint8)


def unsign_weight_codes(model: onnx.ModelProto) -> int:
    """Rewrites a graph written with int8 weight codes (before the unsigned form above) in place:
    each `MatMulIntegerToFloat` with an int8 weight gets its codes + 128 as uint8 and a weight zero
    point of 128, the same integers. Returns how many were rewritten."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    count = 0
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == "MatMulIntegerToFloat" else None
        if weight is None or weight.data_type != TensorProto.INT8:
            continue
        zero_point = initializers.get(node.input[4]) if len(node.input) == 5 else None
        if zero_point is None or int(numpy_helper.to_array(zero_point)) != 128:
            raise ValueError(f"{node.name or node.output[0]}: expected the rewrite's five inputs with an activation zero point of 128")
        weight.CopyFrom(numpy_helper.from_array(unsigned_codes(numpy_helper.to_array(weight)), weight.name))
        node.input.append(node.input[4])  # the weights' zero point: the same 128
        count += 1
    return count


def int8_weights(module: torch.nn.Module) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
    """A module's `RowwiseInt8Linear` layers as the rewrite wants them: the float16 bytes of the
    [in, out] MatMul weight -> the codes ([in, out] int8) and column scales the simulation uses."""
    return {
        m.weight.detach().t().contiguous().numpy().astype(np.float16).tobytes(): (m.codes.t().numpy().astype(np.int8), m.scales.numpy().astype(np.float32))
        for m in module.modules() if isinstance(m, RowwiseInt8Linear)
    }


# Where a head belongs, written into its graph's metadata_props (docs/bundle-format.md, "Head
# metadata"): the service refuses a manifest entry or an upload that disagrees with its file.
HEAD_BRANCH_LAYER, HEAD_INPUT, HEAD_FINGERPRINT = "mtbert.branchLayer", "mtbert.input", "mtbert.pretrainedFingerprint"


def head_metadata(branch_layer: int, input_kind: str, fingerprint: str) -> dict[str, str]:
    """The metadata a head carries: the trunk layer it reads, single or pair input, and the
    fingerprint of the pretrained weights (the frozen trunk) it was trained on."""
    return {HEAD_BRANCH_LAYER: str(branch_layer), HEAD_INPUT: input_kind, HEAD_FINGERPRINT: fingerprint}


def read_metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Sets `metadata` in the graph's metadata_props (other keys kept), in key order: stable bytes."""
    values = {p.key: p.value for p in model.metadata_props} | metadata
    del model.metadata_props[:]
    for key in sorted(values):
        model.metadata_props.add(key=key, value=values[key])


def _save(model: onnx.ModelProto, path: Path, int8: dict[bytes, tuple[np.ndarray, np.ndarray]] | None = None, metadata: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if metadata:
        set_metadata(model, metadata)
    model = store_weights_fp16(model)
    if int8:
        rewritten = quantize_matmuls_int8(model, int8)
        if rewritten < len(int8):  # equal weights share an entry, so more is fine
            raise RuntimeError(f"{path.name}: {rewritten} int8 matmuls rewritten, {len(int8)} expected")
        onnx.checker.check_model(model)
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


def logits_axes(head: TaskHead) -> dict[int, str]:
    """Dynamic axes of a head's logits: per token for a per-token kind (tagging), else per input."""
    return ID_AXES if head.kind.per_token else {0: "batch"}


def export_trunk(trunk: Trunk, output_layers: list[int], path: Path) -> list[dict]:
    """Writes the trunk with one output `hidden_<layer>` per branch layer; returns manifest entries."""
    names = [f"hidden_{layer}" for layer in output_layers]
    model = _export(
        ExportedTrunk(trunk, output_layers), _example_ids(), ["input_ids", "attention_mask", "token_type_ids"], names,
        {"input_ids": ID_AXES, "attention_mask": ID_AXES, "token_type_ids": ID_AXES, **{n: ID_AXES for n in names}},
    )
    _save(model, path, int8_weights(trunk))
    return [{"layer": layer, "name": name} for layer, name in zip(output_layers, names)]


def export_head(head: TaskHead, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Writes a head graph; `metadata` (`head_metadata`) says where it belongs."""
    hidden = torch.randn(2, 7, head.config.hidden_size)
    mask = _example_ids()[1]
    model = _export(
        ExportedHead(head), (hidden, mask), ["hidden_states", "attention_mask"], ["logits"],
        {"hidden_states": ID_AXES, "attention_mask": ID_AXES, "logits": logits_axes(head)},
    )
    _save(model, path, int8_weights(head), metadata)


def export_single_task(model: SingleTaskModel, path: Path) -> None:
    onnx_model = _export(
        model, _example_ids(), ["input_ids", "attention_mask", "token_type_ids"], ["logits"],
        {"input_ids": ID_AXES, "attention_mask": ID_AXES, "token_type_ids": ID_AXES, "logits": logits_axes(model.head)},
    )
    _save(onnx_model, path, int8_weights(model))


def export_embedding_head(head: torch.nn.Module, hidden_size: int, path: Path, metadata: dict[str, str]) -> None:
    """Writes an embedding head (`embedding.EmbeddingHead`): hidden_states + attention_mask -> embedding [batch, hidden]."""
    hidden = torch.randn(2, 7, hidden_size)
    mask = _example_ids()[1]
    model = _export(
        head, (hidden, mask), ["hidden_states", "attention_mask"], ["embedding"],
        {"hidden_states": ID_AXES, "attention_mask": ID_AXES, "embedding": {0: "batch"}},
    )
    _save(model, path, int8_weights(head), metadata)
