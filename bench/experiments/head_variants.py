"""Writes two variants of a bundle's heads for `HeadCost.cs` (an experiment, see README.md):

- `minimal.onnx`: the least a head session can do (the [CLS] row times one 256x2 matrix), with the
  heads' inputs and output: what one session run costs on its own.
- `heads-4bit/<task>.onnx`: every head with each float weight matmul of at least 64 inputs as
  `com.microsoft.MatMulNBits` (4-bit weights, blocks of 32, float32 compute): an eighth of the weight
  bytes, to see whether the heads' time follows their weight bytes.

    PYTHONPATH=training /usr/bin/python3 bench/experiments/head_variants.py models/default /tmp/head-variants
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mtbert.export import replace_nodes

BLOCK = 32


def minimal_head(hidden_size: int) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((hidden_size, 2)).astype(np.float32), "weight")
    first = numpy_helper.from_array(np.array(0, np.int64), "first")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["hidden_states", "first"], ["cls"], axis=1), helper.make_node("MatMul", ["cls", "weight"], ["logits"])],
        "minimal-head",
        [helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, ["batch", "tokens", hidden_size]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [weight, first])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def pack_4bit(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[in, out] float weight -> MatMulNBits' packed codes [out, blocks, BLOCK/2] and scales [out*blocks]
    (symmetric, zero point 8)."""
    k, n = weight.shape
    blocks = weight.T.reshape(n, k // BLOCK, BLOCK)
    absmax = np.abs(blocks).max(axis=2, keepdims=True)
    scales = np.where(absmax > 0, absmax / 7, 1).astype(np.float32)
    codes = (np.clip(np.round(blocks / scales), -7, 7) + 8).astype(np.uint8).reshape(n, k // BLOCK, BLOCK // 2, 2)
    return codes[..., 0] | (codes[..., 1] << 4), scales.reshape(-1)


def weights_4bit(model: onnx.ModelProto) -> int:
    """Rewrites the float weight matmuls (float16 initialisers behind a Cast, as the toolkit stores
    them) in place; returns how many."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    casts = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Cast" and n.input[0] in initializers}
    nodes, count = [], 0
    for node in graph.node:
        source = casts.get(node.input[1]) if node.op_type == "MatMul" and node.domain == "" else None
        weight = numpy_helper.to_array(initializers[source]).astype(np.float32) if source else None
        if weight is None or weight.ndim != 2 or weight.shape[0] < 64 or weight.shape[0] % BLOCK:
            nodes.append(node)
            continue
        codes, scales = pack_4bit(weight)
        graph.initializer.extend([numpy_helper.from_array(codes, f"{source}/4bit"), numpy_helper.from_array(scales, f"{source}/4bit_scales")])
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], f"{source}/4bit", f"{source}/4bit_scales"], list(node.output),
                                      domain="com.microsoft", K=weight.shape[0], N=weight.shape[1], bits=4, block_size=BLOCK))
        count += 1
    replace_nodes(model, nodes)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    (args.out / "heads-4bit").mkdir(parents=True, exist_ok=True)
    onnx.save(minimal_head(manifest["trunk"]["hiddenSize"]), str(args.out / "minimal.onnx"))
    for task in manifest["tasks"]:
        head = onnx.load(str(args.bundle / task["head"]["file"]))
        count = weights_4bit(head)
        onnx.save(head, str(args.out / "heads-4bit" / f"{task['name']}.onnx"))
        print(f"{task['name']}: {count} weight matmuls in 4 bits")


if __name__ == "__main__":
    main()
