"""Runs a bundle's ONNX graphs node by node in PyTorch, for scoring the graphs that ship.

Only the operators the toolkit's exporter and rewrites produce are implemented (an unknown one is
an error naming it). Integer ops compute exactly as ONNX Runtime does (`MatMulIntegerToFloat` sums
the integer products exactly). A float16 graph runs as float16 *storage*: every node whose output
is float16 in the graph computes in float32 from its float16 inputs and rounds its output to
float16, which is what CUDA's float16 kernels do for matmuls (float32 accumulation in cuBLAS),
softmax and layer normalisation (float32 inside). It is not bit-identical to a GPU: ONNX Runtime
fuses some nodes on CUDA (attention, bias + GELU, skip + layer norm), which then keep their
intermediate values in float32, and cuBLAS sums in another order. The GPU check (bench/gpu)
compares the real thing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, numpy_helper

_TYPES = {
    TensorProto.FLOAT: torch.float32, TensorProto.FLOAT16: torch.float32, TensorProto.DOUBLE: torch.float64,
    TensorProto.INT64: torch.int64, TensorProto.INT32: torch.int32, TensorProto.INT8: torch.int8,
    TensorProto.UINT8: torch.uint8, TensorProto.BOOL: torch.bool,
}


def _half(x: torch.Tensor) -> torch.Tensor:
    """float16 storage of a value computed in float32."""
    return x.half().float()


def _attr(node: onnx.NodeProto, name: str, default=None):  # noqa: ANN001, ANN202 - ONNX attributes are of many types
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _tensor(proto: onnx.TensorProto) -> torch.Tensor:
    array = numpy_helper.to_array(proto)
    if array.dtype == np.float16:
        array = array.astype(np.float32)  # exact: float16 values are float32 values
    return torch.from_numpy(np.array(array))


class Graph:
    """One ONNX graph, ready to run on named inputs; returns float32 numpy outputs."""

    def __init__(self, path: Path) -> None:
        self.model = onnx.load(str(path))
        graph = self.model.graph
        self.constants = {i.name: _tensor(i) for i in graph.initializer}
        self.half_outputs = set()  # tensors stored as float16 in the graph
        inferred = onnx.shape_inference.infer_shapes(self.model).graph
        for info in list(inferred.value_info) + list(inferred.output):
            if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
                self.half_outputs.add(info.name)
        for node in graph.node:
            if node.op_type == "Cast" and _attr(node, "to") == TensorProto.FLOAT16:
                self.half_outputs.add(node.output[0])
            if node.op_type == "Constant" and _attr(node, "value").data_type == TensorProto.FLOAT16:
                self.half_outputs.add(node.output[0])
        self.nodes = list(graph.node)
        self.output_names = [o.name for o in graph.output]
        self.input_names = [i.name for i in graph.input if i.name not in self.constants]

    @property
    def is_float16(self) -> bool:
        return bool(self.half_outputs)

    def run(self, inputs: dict[str, torch.Tensor], outputs: list[str] | None = None) -> dict[str, torch.Tensor]:
        values = dict(self.constants)
        values.update(inputs)
        with torch.no_grad():
            for node in self.nodes:
                results = _run_node(node, [values[i] if i else None for i in node.input])
                for name, value in zip(node.output, results):
                    if name in self.half_outputs and value.is_floating_point():
                        value = _half(value)
                    values[name] = value
        return {name: values[name] for name in (outputs or self.output_names)}


def _axes(node: onnx.NodeProto, args: list, index: int) -> list[int] | None:
    """Axes from the attribute (older opsets) or the input (newer ones)."""
    if len(args) > index and args[index] is not None:
        return [int(a) for a in args[index].tolist()]
    axes = _attr(node, "axes")
    return list(axes) if axes is not None else None


def _reduce(x: torch.Tensor, axes: list[int] | None, keep: bool, fn) -> torch.Tensor:  # noqa: ANN001
    dims = axes if axes is not None else list(range(x.ndim))
    out = x
    for d in sorted((a % x.ndim for a in dims), reverse=True):
        out = fn(out, d, keep)
    return out


def _run_node(node: onnx.NodeProto, args: list) -> list[torch.Tensor]:
    run = _OPERATORS.get(node.op_type)
    if run is None or (node.op_type in _CONTRIB and node.domain != "com.microsoft"):
        raise NotImplementedError(f"operator {node.domain + ':' if node.domain else ''}{node.op_type} (node {node.name or node.output[0]})")
    return [run(node, args)]


def _optional(args: list, i: int):  # noqa: ANN202 - a tensor or None
    return args[i] if len(args) > i and args[i] is not None else None


def _cast(node: onnx.NodeProto, args: list) -> torch.Tensor:
    to = _attr(node, "to")
    return args[0].to(_TYPES[to]) if to != TensorProto.FLOAT16 else args[0].float()


def _maximum(node: onnx.NodeProto, args: list) -> torch.Tensor:
    out = args[0]
    for other in args[1:]:
        out = torch.maximum(out, other)
    return out


def _div(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a, b = args[0], args[1]
    return torch.div(a, b, rounding_mode="trunc") if not a.is_floating_point() else torch.div(a, b)


def _gemm(node: onnx.NodeProto, args: list) -> torch.Tensor:
    x, w = args[0], args[1]
    x = x.t() if _attr(node, "transA", 0) else x
    w = w.t() if _attr(node, "transB", 0) else w
    y = _attr(node, "alpha", 1.0) * (x @ w)
    if _optional(args, 2) is not None:
        y = y + _attr(node, "beta", 1.0) * args[2]
    return y


def _layer_norm(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a = args[0]
    shape = a.shape[_attr(node, "axis", -1) % a.ndim:]
    return torch.nn.functional.layer_norm(a, shape, args[1], args[2] if len(args) > 2 else None, _attr(node, "epsilon", 1e-5))


_REDUCERS = {  # opset 13+: axes as an input
    "ReduceMean": lambda t, d, k: t.mean(d, keepdim=k),
    "ReduceSum": lambda t, d, k: t.sum(d, keepdim=k),
    "ReduceL2": lambda t, d, k: t.pow(2).sum(d, keepdim=k).sqrt(),
    "ReduceMax": lambda t, d, k: t.amax(d, keepdim=k),
    "ReduceMin": lambda t, d, k: t.amin(d, keepdim=k),
}


def _reduction(node: onnx.NodeProto, args: list) -> torch.Tensor:
    return _reduce(args[0], _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), _REDUCERS[node.op_type])


def _constant_of_shape(node: onnx.NodeProto, args: list) -> torch.Tensor:
    value = _tensor(_attr(node, "value")) if _attr(node, "value") is not None else torch.zeros(1)
    return torch.full([int(s) for s in args[0].tolist()], value.item(), dtype=value.dtype)


def _gather(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a = args[0]
    axis = _attr(node, "axis", 0) % a.ndim
    index = args[1].long()
    index = torch.where(index < 0, index + a.shape[axis], index)
    return torch.index_select(a, axis, index.reshape(-1)).reshape(a.shape[:axis] + index.shape + a.shape[axis + 1:])


def _unsqueeze(node: onnx.NodeProto, args: list) -> torch.Tensor:
    out = args[0]
    for d in sorted(_axes(node, args, 1) or []):
        out = out.unsqueeze(d if d >= 0 else d + out.ndim + 1)
    return out


def _squeeze(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a, axes = args[0], _axes(node, args, 1)
    return a.squeeze() if axes is None else a.squeeze(*[d % a.ndim for d in axes]) if len(axes) == 1 else _squeeze_all(a, axes)


def _reshape(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a = args[0]
    shape = [int(s) for s in args[1].tolist()]
    return a.reshape([a.shape[i] if s == 0 else s for i, s in enumerate(shape)])


def _transpose(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a, perm = args[0], _attr(node, "perm")
    return a.permute(*(perm if perm is not None else reversed(range(a.ndim))))


def _slice(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a = args[0]
    starts, ends = args[1].tolist(), args[2].tolist()
    axes = args[3].tolist() if _optional(args, 3) is not None else list(range(len(starts)))
    steps = args[4].tolist() if _optional(args, 4) is not None else [1] * len(starts)
    index = [slice(None)] * a.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st != 1:
            raise NotImplementedError(f"Slice with step {st}")
        n = a.shape[ax]
        s = max(0, min(n, s + n if s < 0 else s))
        e = max(0, min(n, e + n if e < 0 else e))
        index[ax] = slice(s, e)
    return a[tuple(index)]


def _quantize_linear(node: onnx.NodeProto, args: list) -> torch.Tensor:
    a, scale, zero = args[0], args[1], args[2]
    axis = _attr(node, "axis", 1) % a.ndim
    view = [1] * a.ndim
    view[axis] = -1
    if scale.ndim == 1:
        scale, zero = scale.reshape(view), zero.reshape(view)
    low, high = (0, 255) if zero.dtype == torch.uint8 else (-128, 127)
    # Round half to even, as ONNX specifies (torch.round does the same).
    return torch.clamp(torch.round(a / scale) + zero.to(torch.float32), low, high).to(zero.dtype)


def _matmul_integer_to_float(node: onnx.NodeProto, args: list) -> torch.Tensor:
    x, w, x_scale, w_scale = args[0], args[1], args[2], args[3]
    x_zero = _optional(args, 4) if _optional(args, 4) is not None else torch.zeros((), dtype=x.dtype)
    w_zero = _optional(args, 5) if _optional(args, 5) is not None else torch.zeros((), dtype=w.dtype)
    xi = x.to(torch.float64) - x_zero.to(torch.float64)
    wi = w.to(torch.float64) - w_zero.to(torch.float64)
    acc = (xi @ wi).to(torch.float32)  # exact integer sums, as ONNX Runtime's int32 accumulator
    y = acc * (x_scale * w_scale)
    return y + args[6] if _optional(args, 6) is not None else y


_CONTRIB = {"MatMulIntegerToFloat"}  # com.microsoft operators: another domain's op of that name is not this one

# One entry per operator: (node, inputs) -> its single output.
_OPERATORS = {
    "Constant": lambda node, args: _tensor(_attr(node, "value")),
    "Identity": lambda node, args: args[0],
    "Cast": _cast,
    "Add": lambda node, args: torch.add(args[0], args[1]),
    "Sub": lambda node, args: torch.sub(args[0], args[1]),
    "Mul": lambda node, args: torch.mul(args[0], args[1]),
    "Div": _div,
    "Pow": lambda node, args: torch.pow(args[0], args[1]),
    "Max": _maximum,
    "Equal": lambda node, args: torch.eq(args[0], args[1]),
    "Where": lambda node, args: torch.where(args[0], args[1], args[2]),
    "Neg": lambda node, args: -args[0],
    "Sqrt": lambda node, args: torch.sqrt(args[0]),
    "Log": lambda node, args: torch.log(args[0]),
    "Exp": lambda node, args: torch.exp(args[0]),
    "Erf": lambda node, args: torch.erf(args[0]),
    "Tanh": lambda node, args: torch.tanh(args[0]),
    "MatMul": lambda node, args: torch.matmul(args[0], args[1]),
    "Gemm": _gemm,
    "Softmax": lambda node, args: torch.softmax(args[0], dim=_attr(node, "axis", -1)),
    "LayerNormalization": _layer_norm,
    **dict.fromkeys(_REDUCERS, _reduction),
    "Clip": lambda node, args: torch.clamp(args[0], min=_optional(args, 1), max=_optional(args, 2)),
    "Shape": lambda node, args: torch.tensor(list(args[0].shape), dtype=torch.int64),
    "ConstantOfShape": _constant_of_shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda node, args: torch.cat(args, dim=_attr(node, "axis")),
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Slice": _slice,
    "Range": lambda node, args: torch.arange(args[0].item(), args[1].item(), args[2].item(), dtype=args[0].dtype),
    "Expand": lambda node, args: args[0] * torch.ones([int(s) for s in args[1].tolist()], dtype=args[0].dtype),
    "QuantizeLinear": _quantize_linear,
    "MatMulIntegerToFloat": _matmul_integer_to_float,
}


def _squeeze_all(a: torch.Tensor, axes: list[int]) -> torch.Tensor:
    for d in sorted((x % a.ndim for x in axes), reverse=True):
        a = a.squeeze(d)
    return a
