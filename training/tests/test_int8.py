"""int8 weight matmuls in the trunk: the PyTorch simulation, the ONNX rewrite, and bundles that use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from mtbert.baselines import export_baselines
from mtbert.bundle import INT8_PARITY_TOLERANCE, BundleError, BundleWriter, read_manifest, verify
from mtbert.checkpoint import load_checkpoint
from mtbert.export import export_head, export_trunk, quantize_columns, unsign_weight_codes
from mtbert.kinds import kind_named
from mtbert.modeling import RowwiseInt8Linear, TaskHead
from mtbert.pipeline import TaskSession
from mtbert.train import Hyper, build_trunk, served_head

FAST = Hyper(epochs=1, batch_size=16, lr=1e-3)


def test_a_row_gets_the_same_result_alone_or_in_any_batch() -> None:
    torch.manual_seed(0)
    layer = RowwiseInt8Linear.from_linear(torch.nn.Linear(64, 48))
    rows = torch.randn(5, 7, 64)
    rows[3] *= 40  # a loud neighbour: with one scale per tensor it would coarsen every other row
    together = layer(rows)
    for i in range(5):
        assert torch.equal(layer(rows[i : i + 1]), together[i : i + 1])


def test_the_simulation_is_integer_arithmetic_close_to_float() -> None:
    torch.manual_seed(1)
    linear = torch.nn.Linear(256, 128)
    layer = RowwiseInt8Linear.from_linear(linear)
    x = torch.randn(3, 9, 256)
    codes, scales = layer.codes, layer.scales
    assert bool((codes == codes.round()).all()) and float(codes.abs().max()) == 127
    row_scales = torch.maximum(x.amax(-1, keepdim=True), -x.amin(-1, keepdim=True)) / 127
    expected = (torch.round(x / row_scales).double() @ codes.double().t()).float() * scales * row_scales + linear.bias
    assert torch.equal(layer(x), expected.detach())
    # Error bound: half a step of the activations and of the weights, summed over the inputs.
    reference = linear(x)
    assert float((layer(x) - reference).abs().max()) < 0.05 * float(reference.abs().max())


def test_the_graph_codes_are_the_simulations_codes() -> None:
    torch.manual_seed(2)
    layer = RowwiseInt8Linear.from_linear(torch.nn.Linear(32, 16))
    with torch.no_grad():
        layer.weight.copy_(layer.weight.half().float())  # as a bundle stores it
    layer.codes, layer.scales = layer.weight_codes()
    codes, scales = quantize_columns(layer.weight.detach().t().contiguous().numpy().astype(np.float16).astype(np.float32))
    assert np.array_equal(codes.T, layer.codes.numpy().astype(np.int8))
    assert np.array_equal(scales, layer.scales.numpy())


def test_an_int8_trunk_graph_has_integer_matmuls_and_no_float_weights_left(tiny_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(tiny_checkpoint)
    trunk = build_trunk(checkpoint, 2, int8_matmuls=True)
    assert trunk.int8_matmuls and not build_trunk(checkpoint, 2).int8_matmuls
    export_trunk(trunk, [1, 2], tmp_path / "trunk.onnx")
    model = onnx.load(str(tmp_path / "trunk.onnx"))
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulIntegerToFloat") == 6 * 2  # q, k, v, attention output, FFN in and out, per layer
    assert ops.count("QuantizeLinear") == 12
    # What stays float: attention's activation-by-activation matmuls (scores, context): two per layer.
    assert ops.count("MatMul") == 2 * 2
    initializers = {i.name: i for i in model.graph.initializer}
    used = {name for n in model.graph.node for name in n.input}
    assert set(initializers) <= used, "the float16 weights the rewrite replaced are dropped"
    codes = [i for name, i in initializers.items() if name.endswith("/codes")]
    # Unsigned codes with a weight zero point of 128: exact integer sums on processors without VNNI too.
    assert len(codes) == 12 and all(i.data_type == TensorProto.UINT8 for i in codes)
    zero_points = {tuple(n.input[4:]) for n in model.graph.node if n.op_type == "MatMulIntegerToFloat"}
    assert len(zero_points) == 1 and all(int(numpy_helper.to_array(initializers[z])) == 128 for z in zero_points.pop())
    # The first layer's query codes are the simulation's.
    query = trunk.layer[0].attention.self.query
    graph_codes = [numpy_helper.to_array(i).astype(np.int16) - 128 for i in codes if numpy_helper.to_array(i).shape == (query.in_features, query.out_features)]
    assert any(np.array_equal(c.T, query.codes.numpy().astype(np.int16)) for c in graph_codes)


@pytest.mark.parametrize(("kind", "layers", "int8_layers"), [("classification", 2, 1), ("classification", 1, 0), ("tagging", 1, 1)])
def test_served_heads_run_their_token_layers_in_int8(tiny_checkpoint: Path, tmp_path: Path, kind: str, layers: int, int8_layers: int) -> None:
    config = load_checkpoint(tiny_checkpoint).config
    torch.manual_seed(3)
    head = TaskHead(config, layers, kind_named(kind), 3).eval()
    assert served_head(head, False) is head
    served = served_head(head, True)
    # A classification head's [CLS]-only last layer stays float; every layer of a tagging head reads every token.
    assert [isinstance(l.intermediate.dense, RowwiseInt8Linear) for l in served.layer] == [i < int8_layers for i in range(layers)]
    assert not any(isinstance(m, RowwiseInt8Linear) for m in head.modules()), "the finished head itself is untouched"
    export_head(served, tmp_path / "head.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "head.onnx")).graph.node]
    assert ops.count("MatMulIntegerToFloat") == 6 * int8_layers


@pytest.fixture(scope="module")
def int8_runs(tiny_checkpoint: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("int8-runs")
    TaskSession.open(tiny_checkpoint, tiny_data, "sst2", max_length=32, int8_matmuls=True).partial(2, FAST, root / "sst2")
    TaskSession.open(tiny_checkpoint, tiny_data, "rte", max_length=32).partial(2, FAST, root / "float-rte")
    return root


def test_export_single_of_an_int8_run_serves_its_head_as_a_bundle_would(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    from mtbert.cli import main

    # Branching at layer 1 of 3: a 2-layer head whose lower layer reads every token.
    TaskSession.open(tiny_checkpoint, tiny_data, "sst2", max_length=32, int8_matmuls=True).partial(1, FAST, tmp_path / "run")
    main(["export-single", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "single.onnx")])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "single.onnx")).graph.node]
    assert ops.count("MatMulIntegerToFloat") == 6 * 2  # the trunk's layer and the head's token-level layer


def test_a_bundle_of_int8_runs_serves_an_int8_trunk_and_refuses_float_heads(int8_runs: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    manifest = writer.add(int8_runs / "sst2", name="t", version="1", max_length=32)
    assert manifest["trunk"]["int8Matmuls"] is True
    assert verify(bundle) == []
    parity = __import__("json").loads((bundle / "parity.json").read_text(encoding="utf-8"))
    assert parity["tolerance"] == INT8_PARITY_TOLERANCE
    ops = [n.op_type for n in onnx.load(str(bundle / "trunk.onnx")).graph.node]
    assert ops.count("MatMulIntegerToFloat") == 6 * 2
    with pytest.raises(BundleError, match="int8_matmuls is False but the bundle's trunk.int8Matmuls is True"):
        writer.add(int8_runs / "float-rte")
    # The baselines of an int8 bundle run every layer in int8 too (like for like).
    assert export_baselines(bundle, tmp_path / "base", tiny_checkpoint)["int8Matmuls"] is True
    base_ops = [n.op_type for n in onnx.load(str(tmp_path / "base" / "sst2.onnx")).graph.node]
    assert base_ops.count("MatMulIntegerToFloat") == 6 * 3
    assert read_manifest(bundle)["trunk"]["int8Matmuls"] is True


def test_a_float_bundle_refuses_int8_heads(int8_runs: Path, tmp_path: Path) -> None:
    writer = BundleWriter(tmp_path / "f")
    manifest = writer.add(int8_runs / "float-rte", name="f", version="1", max_length=32)
    assert manifest["trunk"]["int8Matmuls"] is False
    with pytest.raises(BundleError, match="train it without --int8-matmuls"):
        writer.add(int8_runs / "sst2")


def test_graphs_with_signed_codes_are_rewritten_to_the_same_integers(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A graph written before the codes were stored unsigned (int8 codes, no weight zero point)
    becomes exactly what the export writes now."""
    trunk = build_trunk(load_checkpoint(tiny_checkpoint), 2, int8_matmuls=True)
    export_trunk(trunk, [1, 2], tmp_path / "trunk.onnx")
    current = onnx.load(str(tmp_path / "trunk.onnx"))
    signed = onnx.load(str(tmp_path / "trunk.onnx"))
    initializers = {i.name: i for i in signed.graph.initializer}
    for node in signed.graph.node:
        if node.op_type == "MatMulIntegerToFloat":
            codes = initializers[node.input[1]]
            codes.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(codes).astype(np.int16) - 128).astype(np.int8), codes.name))
            del node.input[5]
    assert unsign_weight_codes(signed) == 12
    assert unsign_weight_codes(signed) == 0, "a second pass finds nothing left to rewrite"
    assert signed.SerializeToString() == current.SerializeToString()
