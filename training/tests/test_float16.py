"""The CUDA graphs of a bundle: float16 trunk, float heads for int8 ones, scoring on both trunks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from mtbert.baselines import SHARED_WEIGHTS, export_baselines
from mtbert.bundle import BundleWriter, read_manifest, verify
from mtbert.float16 import BundleGraphs, dequantize_matmuls, to_float16_compute
from mtbert.onnx_eval import Graph
from mtbert.pipeline import TaskSession
from mtbert.train import Hyper

FAST = Hyper(epochs=1, batch_size=16, lr=1e-3)
TRAINING = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def int8_bundle(tiny_checkpoint: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An int8 bundle with a 2-layer classification head (its lower layer int8) and an int8 tagging head."""
    root = tmp_path_factory.mktemp("f16")
    TaskSession.open(tiny_checkpoint, tiny_data, "sst2", max_length=32, int8_matmuls=True).partial(1, FAST, root / "sst2")
    TaskSession.open(tiny_checkpoint, tiny_data, "snips_slots", max_length=32, int8_matmuls=True, crf=True).partial(2, FAST, root / "slots")
    writer = BundleWriter(root / "bundle")
    writer.add(root / "sst2", name="t", version="1", max_length=32)
    writer.add(root / "slots")
    return root / "bundle"


def _parity_cases(bundle: Path) -> list[dict]:
    return json.loads((bundle / "parity.json").read_text(encoding="utf-8"))["cases"]


def _max_difference(graphs: BundleGraphs, bundle: Path) -> float:
    """Largest difference of the graphs' logits from PyTorch's parity.json outputs."""
    largest = 0.0
    for case in _parity_cases(bundle):
        ids = torch.tensor([case["inputIds"]])
        for task, expected in case["outputs"].items():
            logits = graphs.logits(task, ids, torch.ones_like(ids), torch.tensor([case["tokenTypeIds"]]))
            largest = max(largest, float((logits.flatten() - torch.tensor(expected)).abs().max()))
    return largest


def test_the_interpreter_computes_the_shipped_graphs_as_pytorch_does(int8_bundle: Path) -> None:
    # The int8 graphs, run node by node, agree with the PyTorch simulation the parity references come from.
    manifest = read_manifest(int8_bundle)
    tolerance = json.loads((int8_bundle / "parity.json").read_text(encoding="utf-8"))["tolerance"]
    assert _max_difference(BundleGraphs(int8_bundle, manifest, cuda=False), int8_bundle) <= tolerance


def test_float16_compute_keeps_a_float32_interface() -> None:
    x = onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    w = onnx.numpy_helper.from_array(np.full((3, 3), 1.0 / 3, np.float32), "w")
    graph = onnx.helper.make_graph([onnx.helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT), onnx.helper.make_node("MatMul", ["xh", "w"], ["y"])], "g", [x], [y], [w])
    model = to_float16_compute(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]))
    assert [i.data_type for i in model.graph.initializer] == [TensorProto.FLOAT16]
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert [n.op_type for n in model.graph.node] == ["Cast", "MatMul", "Cast"]
    out = onnx.shape_inference.infer_shapes(model)
    assert {v.name: v.type.tensor_type.elem_type for v in out.graph.value_info}["y/float16"] == TensorProto.FLOAT16


def test_float16_values_are_rounded_after_every_node(tmp_path: Path) -> None:
    # Five times float16(1/3) is 1.66625977 in float32 arithmetic; stored in float16 it is 1.66601562.
    x = onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])
    y = onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])
    w = onnx.numpy_helper.from_array(np.full((5, 1), 1.0 / 3, np.float32), "w")
    graph = onnx.helper.make_graph([onnx.helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT), onnx.helper.make_node("MatMul", ["xh", "w"], ["y"])], "g", [x], [y], [w])
    onnx.save(to_float16_compute(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])), str(tmp_path / "g.onnx"))
    result = float(Graph(tmp_path / "g.onnx").run({"x": torch.ones(1, 5)})["y"])
    float32_sum = 5 * np.float32(np.float16(1.0 / 3))
    assert result == float(np.float16(float32_sum)) == 1.666015625
    assert result != float(float32_sum)


def test_add_cuda_trunk_writes_scores_and_records_the_float16_graphs(int8_bundle: Path, tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(int8_bundle, bundle)
    result = subprocess.run(
        [sys.executable, "-m", "mtbert", "bundle", "add-cuda-trunk", str(bundle), "--data", str(tiny_data), "--pretrained", str(tiny_checkpoint)],
        cwd=TRAINING, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(bundle)
    float16 = manifest["trunk"]["float16"]
    assert float16["file"] == "trunk.float16.onnx" and set(float16["scoredWith"]) == {"trunk", "float16"}
    trunk = onnx.load(str(bundle / float16["file"]))
    ops = [n.op_type for n in trunk.graph.node]
    assert "MatMulIntegerToFloat" not in ops and "LayerNormalization" in ops
    assert {o.name for o in trunk.graph.output} == {o["name"] for o in manifest["trunk"]["outputs"]}
    assert all(o.type.tensor_type.elem_type == TensorProto.FLOAT for o in trunk.graph.output)
    assert any(i.data_type == TensorProto.FLOAT16 for i in trunk.graph.initializer)
    # Both heads hold int8 matmuls (sst2's lower layer, every layer of the tagging head): both get a float graph.
    for task in manifest["tasks"]:
        head = onnx.load(str(bundle / task["head"]["float"]["file"]))
        assert not any(n.op_type == "MatMulIntegerToFloat" for n in head.graph.node)
        scores = task["metrics"]["byTrunk"]
        assert set(scores) == {"trunk", "float16", "examples"} and "score" in scores["float16"]
        assert task["name"] in result.stdout
    # The float16 graphs stay close to the int8 ones on the parity texts (activation rounding apart).
    assert 0 < float16["maxParityLogitDifference"] < 0.5
    assert verify(bundle) == []
    (bundle / "trunk.float16.onnx").write_bytes(b"corrupt")
    assert any("trunk.float16" in p for p in verify(bundle))


def test_a_float_head_computes_what_the_int8_head_approximates(int8_bundle: Path, tmp_path: Path) -> None:
    manifest = read_manifest(int8_bundle)
    entry = next(t for t in manifest["tasks"] if t["output"]["kind"] == "tagging")
    model = onnx.load(str(int8_bundle / entry["head"]["file"]))
    assert dequantize_matmuls(model) == 6
    onnx.save(model, str(tmp_path / "float.onnx"))
    torch.manual_seed(0)
    hidden, mask = torch.randn(2, 9, 32), torch.ones(2, 9, dtype=torch.long)
    int8 = Graph(int8_bundle / entry["head"]["file"]).run({"hidden_states": hidden, "attention_mask": mask})["logits"]
    floats = Graph(tmp_path / "float.onnx").run({"hidden_states": hidden, "attention_mask": mask})["logits"]
    # Same weights; only the activations' int8 rounding differs.
    assert float((int8 - floats).abs().max()) < 0.05 * float(floats.abs().max()) + 1e-3


def test_float16_baselines_share_one_weights_file(int8_bundle: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    index = export_baselines(int8_bundle, tmp_path / "base", tiny_checkpoint, float16=True)
    assert index["float16"] and not index["int8Matmuls"]
    weights = (tmp_path / "base" / SHARED_WEIGHTS).stat().st_size
    files = [tmp_path / "base" / f"{t}.onnx" for t in index["tasks"]]
    assert all(f.stat().st_size < weights for f in files)
    # The bodies are one network: the shared file holds it once, plus each task's output layer.
    one_model = onnx.load(str(files[0]))
    onnx.checker.check_model(str(files[0]))
    assert "MatMulIntegerToFloat" not in {n.op_type for n in one_model.graph.node}
    assert sum(np.prod(i.dims) * 2 for i in one_model.graph.initializer) > 0.6 * weights
