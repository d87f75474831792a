"""Merges every head of a bundle into one ONNX graph (an experiment, see README.md): inputs
`hidden_<layer>` per branch layer and one shared `attention_mask`, outputs `<task>/logits`.

    /usr/bin/python3 bench/experiments/merge_heads.py models/default /tmp/heads-merged.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnx
from onnx import helper


def merge_heads(bundle: Path) -> onnx.ModelProto:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    inputs: dict[str, onnx.ValueInfoProto] = {}
    outputs: list[onnx.ValueInfoProto] = []
    opsets: dict[str, int] = {}
    for task in manifest["tasks"]:
        head = onnx.load(str(bundle / task["head"]["file"]))
        for opset in head.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        prefix = task["name"] + "/"
        shared = {"hidden_states": f"hidden_{task['branchLayer']}", "attention_mask": "attention_mask", "logits": prefix + "logits"}

        def rename(name: str) -> str:
            return name if name == "" else shared.get(name, prefix + name)

        for initializer in head.graph.initializer:
            initializer.name = rename(initializer.name)
            initializers.append(initializer)
        for index, node in enumerate(head.graph.node):
            node.input[:] = [rename(n) for n in node.input]
            node.output[:] = [rename(n) for n in node.output]
            node.name = prefix + (node.name or f"node{index}")
            nodes.append(node)
        for value in head.graph.input:
            value.name = rename(value.name)
            inputs.setdefault(value.name, value)
        output = head.graph.output[0]
        output.name = rename(output.name)
        outputs.append(output)
    graph = helper.make_graph(nodes, "heads", list(inputs.values()), outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    onnx.save(merge_heads(args.bundle), str(args.out))
