"""Rewrite a float trunk (or head) ONNX graph so its weight matmuls run in int8 (an experiment, see README.md).

Every MatMul whose second input is a float16 weight behind a Cast (as the toolkit stores weights) becomes:
  rowwise: the toolkit's own rewrite (`mtbert.export.quantize_matmuls_int8`, adopted as `--int8-matmuls`):
           activations with one scale per row, QuantizeLinear(axis=0) + com.microsoft.MatMulIntegerToFloat.
  tensor:  com.microsoft.DynamicQuantizeMatMul: one activation scale per tensor, i.e. per batch.

  PYTHONPATH=training /usr/bin/python3 bench/experiments/int8_trunk.py float-trunk.onnx /tmp/trunk-int8.onnx --mode rowwise
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mtbert.export import quantize_columns, quantize_matmuls_int8


def weight_matmuls(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """MatMul weight inputs (Cast outputs of float16 initializers) by name, as float16 arrays."""
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    casts = {n.output[0]: initializers[n.input[0]] for n in graph.node if n.op_type == "Cast" and n.input[0] in initializers}
    return {n.input[1]: casts[n.input[1]] for n in graph.node if n.op_type == "MatMul" and n.input[1] in casts and casts[n.input[1]].ndim == 2}


def rewrite_per_tensor(model: onnx.ModelProto) -> int:
    graph = model.graph
    weights = weight_matmuls(graph)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            nodes.append(node)
            continue
        codes, scales = quantize_columns(weights[node.input[1]].astype(np.float32))
        p = f"int8/{len(nodes)}"
        for name, value in ((f"{p}/codes", codes), (f"{p}/scales", scales), (f"{p}/zero", np.zeros(codes.shape[1], np.int8))):
            graph.initializer.append(numpy_helper.from_array(value, name))
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], f"{p}/codes", f"{p}/scales", f"{p}/zero"], [node.output[0]], domain="com.microsoft"))
    del graph.node[:]
    graph.node.extend(nodes)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--mode", choices=["rowwise", "tensor"], default="rowwise")
    args = parser.parse_args()
    model = onnx.load(args.source)
    if args.mode == "rowwise":
        weights = {w.tobytes(): quantize_columns(w.astype(np.float32)) for w in weight_matmuls(model.graph).values()}
        count = quantize_matmuls_int8(model, weights)
    else:
        count = rewrite_per_tensor(model)
    onnx.save(model, args.target)
    print(f"{args.target}: {count} weight matmuls in int8 ({args.mode})")


if __name__ == "__main__":
    main()
