"""Rewrite a trunk (or head) ONNX graph so its weight matmuls run in int8 (an experiment, see README.md).

Every MatMul whose second input is a constant 2-D weight (float32, or float16 behind a Cast) becomes:
  rowwise: activations quantized with one symmetric scale per row (token), QuantizeLinear(axis=0) +
           com.microsoft.MatMulIntegerToFloat, weights int8 with one scale per output column. A row's
           result does not depend on the other rows of the batch.
  tensor:  com.microsoft.DynamicQuantizeMatMul: one activation scale per tensor, i.e. per batch.

  /usr/bin/python3 bench/experiments/int8_trunk.py models/default/trunk.onnx /tmp/trunk-int8.onnx --mode rowwise
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_weights(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Cast(initializer) outputs by name, as float32 arrays."""
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {name: array.astype(np.float32) for name, array in initializers.items()}
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in initializers:
            weights[node.output[0]] = initializers[node.input[0]].astype(np.float32)
    return weights


def quantize_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per output column."""
    scale = np.abs(weight).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.rint(weight / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def rewrite(model: onnx.ModelProto, mode: str) -> int:
    graph = model.graph
    weights = constant_weights(graph)

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    if mode == "rowwise":
        constant("int8/127", np.array(127.0, np.float32))
        constant("int8/tiny", np.array(1e-12, np.float32))
        constant("int8/one", np.array(1.0, np.float32))
        constant("int8/zero_point", np.array(128, np.uint8))
        constant("int8/last", np.array([-1], np.int64))
        constant("int8/first", np.array([0], np.int64))

    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is None or weight.ndim != 2:
            nodes.append(node)
            continue
        k, n = weight.shape
        q, scale = quantize_columns(weight)
        p = f"int8/{rewritten}"
        x, y = node.input[0], node.output[0]
        constant(f"{p}/wq", q)
        constant(f"{p}/ws", scale)
        if mode == "tensor":
            constant(f"{p}/wz", np.zeros(n, np.int8))
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [x, f"{p}/wq", f"{p}/ws", f"{p}/wz"], [y], domain="com.microsoft"))
        else:
            constant(f"{p}/rows", np.array([-1, k], np.int64))
            constant(f"{p}/n", np.array([n], np.int64))
            nodes += [
                helper.make_node("Shape", [x], [f"{p}/shape"]),
                helper.make_node("Reshape", [x, f"{p}/rows"], [f"{p}/x"]),  # [rows, K]
                helper.make_node("ReduceMax", [f"{p}/x"], [f"{p}/max"], axes=[1], keepdims=0),
                helper.make_node("ReduceMin", [f"{p}/x"], [f"{p}/min"], axes=[1], keepdims=0),
                helper.make_node("Neg", [f"{p}/min"], [f"{p}/-min"]),
                helper.make_node("Max", [f"{p}/max", f"{p}/-min", "int8/tiny"], [f"{p}/absmax"]),
                helper.make_node("Div", [f"{p}/absmax", "int8/127"], [f"{p}/scale"]),  # one scale per row
                helper.make_node("Shape", [f"{p}/scale"], [f"{p}/scale_shape"]),
                helper.make_node("ConstantOfShape", [f"{p}/scale_shape"], [f"{p}/zp"],
                                 value=helper.make_tensor("v", TensorProto.UINT8, [1], [128])),
                # uint8 around 128: ONNX Runtime's fast integer GEMM wants unsigned activations.
                helper.make_node("QuantizeLinear", [f"{p}/x", f"{p}/scale", f"{p}/zp"], [f"{p}/xq"], axis=0),
                helper.make_node("MatMulIntegerToFloat", [f"{p}/xq", f"{p}/wq", "int8/one", f"{p}/ws", "int8/zero_point"],
                                 [f"{p}/y"], domain="com.microsoft"),
                helper.make_node("Unsqueeze", [f"{p}/scale", "int8/last"], [f"{p}/row_scale"]),
                helper.make_node("Mul", [f"{p}/y", f"{p}/row_scale"], [f"{p}/y_rows"]),
                helper.make_node("Slice", [f"{p}/shape", "int8/first", "int8/last"], [f"{p}/lead"]),
                helper.make_node("Concat", [f"{p}/lead", f"{p}/n"], [f"{p}/out_shape"], axis=0),
                helper.make_node("Reshape", [f"{p}/y_rows", f"{p}/out_shape"], [y]),
            ]
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return rewritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--mode", choices=["rowwise", "tensor"], default="rowwise")
    args = parser.parse_args()
    model = onnx.load(args.source)
    count = rewrite(model, args.mode)
    onnx.save(model, args.target)
    print(f"{args.target}: {count} weight matmuls in int8 ({args.mode})")


if __name__ == "__main__":
    main()
