"""The CUDA graphs of a bundle: a float16 trunk beside the trunk, and float heads for the heads
that hold int8 matmuls (ONNX Runtime's CUDA provider has no kernel for `MatMulIntegerToFloat`,
so those nodes would run on the CPU between copies). docs/bundle-format.md, "CUDA graphs".

The float16 trunk is exported from the same pretrained weights as the trunk (TorchScript exporter,
opset 17 for its `LayerNormalization`, whose float16 kernels normalise in float32), with the weights
the trunk computes with: for an int8 trunk, each weight matmul's int8 codes times their column
scales, so the float16 trunk differs from the int8 one only by the activations' rounding (int8 per
row there, float16 here). Its inputs and outputs are those of the trunk (int64 ids, float32 hidden
states: a Cast at each end), so heads read either without change.

Every head is scored on both trunks by running the bundle's own graphs (`onnx_eval`); what each
score was computed with is recorded in the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .checkpoint import load_checkpoint, sha256_file
from .data import load_task_spec, read_examples
from .export import ID_AXES, _example_ids, _export, replace_nodes, store_weights_fp16
from .encoded import EncodedSet
from .kinds import kind_named
from .manifest_file import MANIFEST, default_pretrained, read_manifest, write_json_atomic
from .modeling import ExportedTrunk, RowwiseInt8Linear
from .onnx_eval import Graph
from .tokenization import WordPieceTokenizer, read_vocab
from .train import length_batches, pad_ids
from .train import build_trunk

FLOAT16_OPSET = 17  # LayerNormalization: float16 in, float32 statistics inside
FLOAT16_TRUNK = "trunk.float16.onnx"

SCORED_WITH_TRUNK = (
    "the bundle's trunk and head graphs run node by node in PyTorch (mtbert.onnx_eval): float32 arithmetic, "
    "integer matmuls summed exactly as ONNX Runtime does"
)
SCORED_WITH_FLOAT16 = (
    "trunk.float16 and the heads' CUDA graphs run node by node in PyTorch (mtbert.onnx_eval) on a CPU, not on a GPU: "
    "every float16 tensor of the graph is rounded to float16 after its node, which computes in float32 from float16 inputs "
    "(as CUDA's float16 matmul, softmax and layer-norm kernels accumulate); ONNX Runtime's CUDA fusions keep some "
    "intermediates in float32 and cuBLAS sums in another order, so a GPU can differ slightly (bench/gpu measures it)"
)


class Float16Error(ValueError):
    pass


# ------------------------------------------------------------------------------ graph rewrites
def to_float16_compute(model: onnx.ModelProto) -> onnx.ModelProto:
    """Makes a float32 graph compute in float16: float initialisers, constants and casts become
    float16, and each float32 output gets a Cast back to float32 under its own name (the interface
    stays float32). Integer tensors are untouched."""
    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "to" and node.op_type == "Cast" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.FLOAT16
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attribute.t).astype(np.float16), attribute.t.name))
    casts = []
    for output in graph.output:
        if output.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = output.name + "/float16"
        for node in graph.node:
            node.output[:] = [inner if o == output.name else o for o in node.output]
            node.input[:] = [inner if i == output.name else i for i in node.input]
        casts.append(helper.make_node("Cast", [inner], [output.name], to=TensorProto.FLOAT, name=output.name + "/to_float32"))
    graph.node.extend(casts)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def dequantize_matmuls(model: onnx.ModelProto) -> int:
    """Replaces each int8 matmul that `export.quantize_matmuls_int8` wrote (row-scale nodes,
    `MatMulIntegerToFloat`, reshapes) by one float `MatMul` with the weights it multiplies by:
    (codes - zero point) x column scale. Returns how many were replaced."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    replaced: dict[int, onnx.NodeProto] = {}  # id of the node that produced y -> the new MatMul
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "MatMulIntegerToFloat":
            continue
        prefix = node.output[0].rsplit("/", 1)[0]  # int8/<i>
        x = producers[f"{prefix}/x"].input[0]
        last = consumers[f"{prefix}/y"][0]  # Reshape back to [..., n]
        codes = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        zero = float(numpy_helper.to_array(initializers[node.input[5]])) if len(node.input) > 5 else 0.0
        scales = numpy_helper.to_array(initializers[node.input[3]]).astype(np.float32)
        weight = (codes - zero) * scales[None, :]
        graph.initializer.append(numpy_helper.from_array(weight.astype(np.float32), f"{prefix}/weight"))
        replaced[id(last)] = helper.make_node("MatMul", [x, f"{prefix}/weight"], [last.output[0]], name=f"{prefix}/matmul")
        dropped |= {id(n) for n in graph.node if any(o.startswith(prefix + "/") for o in n.output)}
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped or id(n) in replaced]
    replace_nodes(model, nodes)
    return len(replaced)


def has_int8_matmuls(path: Path) -> bool:
    return any(n.op_type == "MatMulIntegerToFloat" for n in onnx.load(str(path), load_external_data=False).graph.node)


def dequantize_modules(module: torch.nn.Module) -> None:
    """Gives each `RowwiseInt8Linear` the weights it multiplies by (codes x column scale), so that
    an export traces the float matmul an int8 layer approximates with exactly those weights."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, RowwiseInt8Linear):
                m.weight.copy_(m.codes * m.scales[:, None])


def export_trunk_float16(checkpoint_dir: str | Path, manifest: dict, path: Path) -> None:
    """The float16 trunk of a bundle's trunk: same depth, same outputs, same weights."""
    trunk_entry = manifest["trunk"]
    checkpoint = load_checkpoint(checkpoint_dir)
    expected = trunk_entry["pretrained"]["fingerprint"]
    if checkpoint.fingerprint != expected:
        raise Float16Error(f"{checkpoint_dir}: fingerprint {checkpoint.fingerprint[:12]}… is not trunk.pretrained.fingerprint {expected[:12]}…: other pretrained weights")
    trunk = build_trunk(checkpoint, trunk_entry["numLayers"], bool(trunk_entry.get("int8Matmuls", False)))
    dequantize_modules(trunk)
    layers = [o["layer"] for o in trunk_entry["outputs"]]
    names = [o["name"] for o in trunk_entry["outputs"]]
    inputs = trunk_entry["inputs"]
    id_names = [inputs["inputIds"], inputs["attentionMask"], inputs["tokenTypeIds"]]
    model = _export(ExportedTrunk(trunk, layers), _example_ids(), id_names, names, {**{n: ID_AXES for n in id_names}, **{n: ID_AXES for n in names}}, opset=FLOAT16_OPSET)
    model = to_float16_compute(model)
    model.producer_name, model.producer_version = "mtbert", ""
    path.write_bytes(model.SerializeToString())


def write_float_head(source: Path, target: Path) -> None:
    model = onnx.load(str(source))
    if dequantize_matmuls(model) == 0:
        raise Float16Error(f"{source}: no int8 matmul to replace")
    store_weights_fp16(model)  # stored as float16 like the head's other weights (float32 math after the Cast)
    model.producer_name, model.producer_version = "mtbert", ""
    target.write_bytes(model.SerializeToString())


# ------------------------------------------------------------------------------------- scoring
class BundleGraphs:
    """A bundle's trunk and heads as runnable graphs (default graphs, or the CUDA ones)."""

    def __init__(self, bundle: Path, manifest: dict, cuda: bool) -> None:
        trunk = manifest["trunk"]
        self.trunk = Graph(bundle / (trunk["float16"]["file"] if cuda else trunk["file"]))
        self.inputs = trunk["inputs"]
        self.outputs = {o["layer"]: o["name"] for o in trunk["outputs"]}
        self.heads = {}
        for task in manifest["tasks"]:
            head = task["head"]
            file = head["float"]["file"] if cuda and "float" in head else head["file"]
            self.heads[task["name"]] = (Graph(bundle / file), task)

    def logits(self, task: str, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        graph, entry = self.heads[task]
        layer = entry["branchLayer"]
        hidden = self.trunk.run({self.inputs["inputIds"]: ids, self.inputs["attentionMask"]: mask, self.inputs["tokenTypeIds"]: types}, [self.outputs[layer]])
        feeds = {entry["head"]["inputs"]["hiddenStates"]: hidden[self.outputs[layer]]}
        if entry["head"]["inputs"].get("attentionMask"):
            feeds[entry["head"]["inputs"]["attentionMask"]] = mask
        return graph.run(feeds, [entry["head"]["output"]])[entry["head"]["output"]]


def dev_scores(graphs: BundleGraphs, task: str, data: EncodedSet, spec, batch_size: int = 64) -> dict[str, float]:  # noqa: ANN001 - TaskSpec
    entry = graphs.heads[task][1]
    kind = kind_named(entry["output"]["kind"])
    rows: list[torch.Tensor] = [torch.empty(0)] * len(data)
    for batch in length_batches(data.lengths(), batch_size, None):
        ids, mask, types = pad_ids([data.encodings[i] for i in batch])
        logits = graphs.logits(task, ids, mask, types)
        for row, index in enumerate(batch):
            rows[index] = logits[row, : int(mask[row].sum())] if kind.per_token else logits[row]
    logits = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    return kind.evaluate(spec, logits, data, kind.manifest_crf(entry["output"]))


def parity_difference(bundle: Path, manifest: dict, default: BundleGraphs, cuda: BundleGraphs) -> float:
    """Largest logit difference between the two sets of graphs over parity.json's texts (each alone)."""
    path = bundle / "parity.json"
    if not path.is_file():
        return float("nan")
    largest = 0.0
    for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
        ids = torch.tensor([case["inputIds"]])
        types = torch.tensor([case["tokenTypeIds"]])
        mask = torch.ones_like(ids)
        for task in case["outputs"]:
            difference = (default.logits(task, ids, mask, types) - cuda.logits(task, ids, mask, types)).abs().max()
            largest = max(largest, float(difference))
    return largest


# ------------------------------------------------------------------------------------- command
def add_cuda_graphs(bundle: Path, data_root: Path, pretrained: str | Path | None = None, max_dev: int | None = None, log=print) -> dict:  # noqa: ANN001
    """Writes trunk.float16.onnx and a float head for every head with int8 matmuls, scores every
    head on both trunks over its dev split, and records files, hashes and scores in the manifest.
    Running it again replaces what an earlier run wrote."""
    manifest = read_manifest(bundle)
    trunk = manifest["trunk"]
    pretrained = pretrained or default_pretrained(manifest)
    export_trunk_float16(pretrained, manifest, bundle / FLOAT16_TRUNK)
    trunk["float16"] = {"file": FLOAT16_TRUNK, "sha256": sha256_file(bundle / FLOAT16_TRUNK)}
    for task in manifest["tasks"]:
        head = task["head"]
        head.pop("float", None)
        if has_int8_matmuls(bundle / head["file"]):
            file = head["file"].removesuffix(".onnx") + ".float.onnx"
            write_float_head(bundle / head["file"], bundle / file)
            head["float"] = {"file": file, "sha256": sha256_file(bundle / file)}
    default, cuda = BundleGraphs(bundle, manifest, cuda=False), BundleGraphs(bundle, manifest, cuda=True)
    t = manifest["tokenizer"]
    tokenizer = WordPieceTokenizer(read_vocab(bundle / t["vocabFile"]), lowercase=t["lowercase"], strip_accents=t["stripAccents"], max_length=t["maxSequenceLength"])
    report = []
    for task in manifest["tasks"]:
        if task["output"]["kind"] in ("embedding", "examples"):
            continue  # no dataset of their own to score; their agreement is `mtbert embedding-eval`'s
        spec = load_task_spec(data_root, task["name"])
        examples = read_examples(data_root / task["name"] / "dev.jsonl", spec, max_dev)
        data = EncodedSet.build(examples, tokenizer, spec)
        scores = {"trunk": dev_scores(default, task["name"], data, spec), "float16": dev_scores(cuda, task["name"], data, spec)}
        metrics = task.setdefault("metrics", {})
        metrics["byTrunk"] = {**scores, "examples": len(data)}
        primary = metrics.get("primary") or spec.primary_metric
        before, after = scores["trunk"]["score"], scores["float16"]["score"]  # every metric set has its primary figure as "score"
        report.append({"task": task["name"], "metric": primary, "trunk": before, "float16": after, "difference": after - before, "examples": len(data)})
        log(f"{task['name']:>14} {primary:>12}  trunk {before:7.2f}  float16 {after:7.2f}  difference {after - before:+6.2f}  ({len(data)} dev examples)")
    trunk["float16"]["scoredWith"] = {"trunk": SCORED_WITH_TRUNK, "float16": SCORED_WITH_FLOAT16}
    trunk["float16"]["maxParityLogitDifference"] = round(parity_difference(bundle, manifest, default, cuda), 6)
    write_json_atomic(bundle / MANIFEST, manifest)
    return {"tasks": report, "maxParityLogitDifference": trunk["float16"]["maxParityLogitDifference"]}
