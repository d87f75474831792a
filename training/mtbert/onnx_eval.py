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


def _run_node(node: onnx.NodeProto, args: list) -> list[torch.Tensor]:  # noqa: C901 - one branch per operator
    op = node.op_type
    a = args[0] if args else None
    if op == "Constant":
        return [_tensor(_attr(node, "value"))]
    if op == "Identity":
        return [a]
    if op == "Cast":
        to = _attr(node, "to")
        return [a.to(_TYPES[to]) if to != TensorProto.FLOAT16 else a.float()]
    if op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Equal", "Where"):
        if op == "Max":
            out = args[0]
            for other in args[1:]:
                out = torch.maximum(out, other)
            return [out]
        if op == "Where":
            return [torch.where(args[0], args[1], args[2])]
        b = args[1]
        if op == "Div" and not a.is_floating_point():
            return [torch.div(a, b, rounding_mode="trunc")]
        return [{"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow, "Equal": torch.eq}[op](a, b)]
    if op == "Neg":
        return [-a]
    if op == "Sqrt":
        return [torch.sqrt(a)]
    if op == "Erf":
        return [torch.erf(a)]
    if op == "Tanh":
        return [torch.tanh(a)]
    if op == "MatMul":
        return [torch.matmul(a, args[1])]
    if op == "Gemm":
        x, w = a, args[1]
        x = x.t() if _attr(node, "transA", 0) else x
        w = w.t() if _attr(node, "transB", 0) else w
        y = _attr(node, "alpha", 1.0) * (x @ w)
        if len(args) > 2 and args[2] is not None:
            y = y + _attr(node, "beta", 1.0) * args[2]
        return [y]
    if op == "Softmax":
        return [torch.softmax(a, dim=_attr(node, "axis", -1))]
    if op == "LayerNormalization":
        axis = _attr(node, "axis", -1) % a.ndim
        shape = a.shape[axis:]
        return [torch.nn.functional.layer_norm(a, shape, args[1], args[2] if len(args) > 2 else None, _attr(node, "epsilon", 1e-5))]
    if op == "ReduceMean":
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.mean(d, keepdim=k))]
    if op == "ReduceSum":  # opset 13+: axes as an input
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.sum(d, keepdim=k))]
    if op == "ReduceL2":
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.pow(2).sum(d, keepdim=k).sqrt())]
    if op == "Clip":
        low = args[1] if len(args) > 1 and args[1] is not None else None
        high = args[2] if len(args) > 2 and args[2] is not None else None
        return [torch.clamp(a, min=low, max=high)]
    if op == "ReduceMax":
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.amax(d, keepdim=k))]
    if op == "ReduceMin":
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.amin(d, keepdim=k))]
    if op == "ReduceSum":
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.sum(d, keepdim=k))]
    if op == "ReduceMin":
        return [_reduce(a, _axes(node, args, 1), bool(_attr(node, "keepdims", 1)), lambda t, d, k: t.amin(d, keepdim=k))]
    if op == "Shape":
        return [torch.tensor(list(a.shape), dtype=torch.int64)]
    if op == "ConstantOfShape":
        value = _tensor(_attr(node, "value")) if _attr(node, "value") is not None else torch.zeros(1)
        return [torch.full([int(s) for s in a.tolist()], value.item(), dtype=value.dtype)]
    if op == "Gather":
        axis = _attr(node, "axis", 0) % a.ndim
        index = args[1].long()
        index = torch.where(index < 0, index + a.shape[axis], index)
        return [torch.index_select(a, axis, index.reshape(-1)).reshape(a.shape[:axis] + index.shape + a.shape[axis + 1:])]
    if op == "Unsqueeze":
        out = a
        for d in sorted(_axes(node, args, 1) or []):
            out = out.unsqueeze(d if d >= 0 else d + out.ndim + 1)
        return [out]
    if op == "Squeeze":
        axes = _axes(node, args, 1)
        return [a.squeeze() if axes is None else a.squeeze(*[d % a.ndim for d in axes]) if len(axes) == 1 else _squeeze_all(a, axes)]
    if op == "Concat":
        return [torch.cat(args, dim=_attr(node, "axis"))]
    if op == "Reshape":
        shape = [int(s) for s in args[1].tolist()]
        shape = [a.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return [a.reshape(shape)]
    if op == "Transpose":
        perm = _attr(node, "perm")
        return [a.permute(*(perm if perm is not None else reversed(range(a.ndim))))]
    if op == "Slice":
        starts, ends = args[1].tolist(), args[2].tolist()
        axes = args[3].tolist() if len(args) > 3 and args[3] is not None else list(range(len(starts)))
        steps = args[4].tolist() if len(args) > 4 and args[4] is not None else [1] * len(starts)
        index = [slice(None)] * a.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            if st != 1:
                raise NotImplementedError(f"Slice with step {st}")
            n = a.shape[ax]
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            index[ax] = slice(s, e)
        return [a[tuple(index)]]
    if op == "Range":
        return [torch.arange(a.item(), args[1].item(), args[2].item(), dtype=a.dtype)]
    if op == "Expand":
        shape = [int(s) for s in args[1].tolist()]
        return [a * torch.ones(shape, dtype=a.dtype)]
    if op == "QuantizeLinear":
        scale, zero = args[1], args[2]
        axis = _attr(node, "axis", 1) % a.ndim
        view = [1] * a.ndim
        view[axis] = -1
        if scale.ndim == 1:
            scale, zero = scale.reshape(view), zero.reshape(view)
        low, high = (0, 255) if zero.dtype == torch.uint8 else (-128, 127)
        # Round half to even, as ONNX specifies (torch.round does the same).
        return [torch.clamp(torch.round(a / scale) + zero.to(torch.float32), low, high).to(zero.dtype)]
    if op == "MatMulIntegerToFloat" and node.domain == "com.microsoft":
        x, w, x_scale, w_scale = args[0], args[1], args[2], args[3]
        x_zero = args[4] if len(args) > 4 and args[4] is not None else torch.zeros((), dtype=x.dtype)
        w_zero = args[5] if len(args) > 5 and args[5] is not None else torch.zeros((), dtype=w.dtype)
        xi = x.to(torch.float64) - x_zero.to(torch.float64)
        wi = w.to(torch.float64) - w_zero.to(torch.float64)
        acc = (xi @ wi).to(torch.float32)  # exact integer sums, as ONNX Runtime's int32 accumulator
        y = acc * (x_scale * w_scale)
        if len(args) > 6 and args[6] is not None:
            y = y + args[6]
        return [y]
    raise NotImplementedError(f"operator {node.domain + ':' if node.domain else ''}{op} (node {node.name or node.output[0]})")


def _squeeze_all(a: torch.Tensor, axes: list[int]) -> torch.Tensor:
    for d in sorted((x % a.ndim for x in axes), reverse=True):
        a = a.squeeze(d)
    return a
