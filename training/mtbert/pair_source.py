"""Pair tasks from two sentence embeddings (`mtbert bundle pair-source`, issue #27 item 4).

A pair task (STS-B similarity, MRPC paraphrase) can be answered two ways: the joint pass
([CLS] a [SEP] b through the trunk and the task's trained head), or from the embeddings of `text`
and `textPair` computed separately by the bundle's embedding task, mapped to the task's output by
`z = w · features(u, v) + b` (features: the cosine). A regression task answers `z` (clamped to its
range); a two-label classification answers the logits `[0, z]`, i.e. P(second label) = sigmoid(z).

The mapping is fitted on the train split (least squares for regression, cross-entropy for
classification) on cosines from the bundle's own ONNX graphs (its trunk and embedding head, run
node by node by `onnx_eval`: what the service runs), both ways are scored on dev, and the better one
is written into the task's `output.source` with both dev scores (docs/bundle-format.md,
"Pair tasks from embeddings").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import metrics
from .calibrate import beats_majority, head_outputs, majority_accuracy
from .data import TaskSpec, load_task_spec, read_examples, split_file
from .embedding import bundle_tokenizer, embedding_task
from .encoded import EncodedSet
from .manifest_file import MANIFEST, PARITY, BundleError, read_manifest, write_json_atomic
from .onnx_eval import Graph
from .tokenization import WordPieceTokenizer
from .train import length_batches, pad_ids

EMBEDDINGS, JOINT_PASS = "embeddings", "jointPass"
FEATURES = ["cosine"]
# Fitting two numbers: a seeded sample of this many train pairs is plenty (and keeps the run short).
DEFAULT_MAX_TRAIN = 2000
# What the joint pass had that the embeddings way cannot use, kept in `source.jointPass` to restore it.
JOINT_ONLY_OUTPUT = ("temperature", "fallback")


class BundleTrunk:
    """The bundle's trunk graph as a callable: (ids, mask, types) -> {layer: hidden states}."""

    def __init__(self, bundle: Path, manifest: dict) -> None:
        trunk = manifest["trunk"]
        self.graph = Graph(bundle / trunk["file"])
        self.inputs = trunk["inputs"]
        self.layers = {o["name"]: o["layer"] for o in trunk["outputs"]}

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> dict[int, torch.Tensor]:
        feeds = {self.inputs["inputIds"]: ids, self.inputs["attentionMask"]: mask, self.inputs["tokenTypeIds"]: types}
        return {self.layers[name]: value for name, value in self.graph.run(feeds, list(self.layers)).items()}


class GraphEmbedder:
    """Sentence embeddings as the service computes them: the bundle's trunk graph, then its embedding head's graph."""

    def __init__(self, bundle: Path, manifest: dict, entry: dict) -> None:
        self.trunk = BundleTrunk(bundle, manifest)
        self.head = Graph(bundle / entry["head"]["file"])
        self.entry = entry
        self.tokenizer: WordPieceTokenizer = bundle_tokenizer(bundle, manifest)

    def embed(self, texts: list[str], batch_size: int = 64, desc: str = "embed") -> np.ndarray:
        encodings = [self.tokenizer.encode(t) for t in texts]
        rows = np.zeros((len(texts), int(self.entry["output"]["dimensions"])), np.float32)
        inputs = self.entry["head"]["inputs"]
        for batch in tqdm(length_batches([len(e.input_ids) for e in encodings], batch_size, None), desc=desc, disable=len(texts) <= batch_size):
            ids, mask, types = pad_ids([encodings[i] for i in batch])
            hidden = self.trunk(ids, mask, types)[self.entry["branchLayer"]]
            feeds = {inputs["hiddenStates"]: hidden, inputs.get("attentionMask") or "attention_mask": mask}
            rows[batch] = self.head.run(feeds)[self.entry["head"]["output"]].numpy()
        return rows


def cosines(embedder: GraphEmbedder, texts: list[str], pairs: list[str], desc: str) -> np.ndarray:
    """Cosine of each text's embedding with its pair's (the vectors are unit length)."""
    both = embedder.embed(texts + pairs, desc=desc)
    return np.sum(both[: len(texts)] * both[len(texts):], axis=1).astype(np.float64)


def features(cosine: np.ndarray) -> np.ndarray:
    """[n, len(FEATURES)]: what the weights multiply (the service computes the same, `EmbeddingPairSource`)."""
    return cosine.reshape(-1, 1)


def fit_least_squares(x: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.hstack([x, np.ones((len(x), 1))])
    solution, *_ = np.linalg.lstsq(design, gold, rcond=None)
    return solution[:-1], float(solution[-1])


def fit_logistic(x: np.ndarray, gold: np.ndarray, l2: float = 1e-4, steps: int = 50) -> tuple[np.ndarray, float]:
    """Cross-entropy of sigmoid(w·x + b) against 0/1 labels, by Newton's method (a tiny L2 keeps separable data finite)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (p - gold) / len(gold) + l2 * theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design / len(gold) + l2 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


@dataclass(frozen=True)
class PairMapping:
    """z = weights · features + bias; a regression answers z, a classification the logits [0, z]."""

    weights: list[float]
    bias: float

    def z(self, cosine: np.ndarray) -> np.ndarray:
        return features(cosine) @ np.asarray(self.weights) + self.bias

    def row(self, cosine: float, regression: bool) -> list[float]:
        z = float(self.z(np.array([cosine]))[0])
        return [z] if regression else [0.0, z]


def _is_regression(entry: dict) -> bool:
    return entry["output"]["kind"] == "regression"


def predictions(entry: dict, outputs: np.ndarray) -> np.ndarray:
    """What the service answers from output rows: the clamped value, or the top label's index."""
    if _is_regression(entry):
        low, high = entry["output"]["range"]
        return np.clip(outputs[:, 0], low, high)
    return outputs.argmax(1)


@dataclass
class PairComparison:
    """One pair task, both ways on dev, and the fitted mapping."""

    task: str
    mapping: PairMapping
    train_examples: int
    dev: dict[str, dict[str, float]]  # way -> metric values
    majority: tuple[float, int] | None = None  # a classification's dev accuracy of its majority class (points), dev examples

    @property
    def better(self) -> str:
        return EMBEDDINGS if self.dev[EMBEDDINGS]["score"] > self.dev[JOINT_PASS]["score"] else JOINT_PASS


def _check_task(manifest: dict, name: str, bundle: Path) -> dict:
    entry = next((t for t in manifest["tasks"] if t["name"] == name), None)
    if entry is None:
        raise BundleError(f"{bundle / MANIFEST}: no task {name!r}")
    output = entry["output"]
    width = 1 if output["kind"] == "regression" else len(output.get("labels") or []) if output["kind"] == "classification" else 0
    if entry["input"] != "pair" or width not in (1, 2):
        raise BundleError(f"{bundle / MANIFEST}: task {name!r} is not a pair regression or two-label classification task")
    return entry


def compare(bundle: Path, data_root: Path, task: str, embedding: str | None = None, max_train: int | None = DEFAULT_MAX_TRAIN, seed: int = 0) -> PairComparison:
    """Fits the mapping on (a seeded sample of) train and scores both ways on dev."""
    manifest = read_manifest(bundle)
    entry, source = _check_task(manifest, task, bundle), embedding_task(manifest, embedding, bundle)
    spec: TaskSpec = load_task_spec(data_root, task)
    train = read_examples(split_file(data_root, task, "train"), spec, max_train, seed)
    dev = read_examples(split_file(data_root, task, "dev"), spec)
    embedder = GraphEmbedder(bundle, manifest, source)
    train_cos = cosines(embedder, [e.text for e in train], [e.text_pair or "" for e in train], f"{task}: train embeddings")
    dev_cos = cosines(embedder, [e.text for e in dev], [e.text_pair or "" for e in dev], f"{task}: dev embeddings")
    train_gold = np.array([float(e.label) for e in train])
    dev_gold = np.array([e.label for e in dev])
    regression = _is_regression(entry)
    weights, bias = (fit_least_squares if regression else fit_logistic)(features(train_cos), train_gold)
    mapping = PairMapping([float(w) for w in weights], bias)
    rows = np.array([mapping.row(c, regression) for c in dev_cos], np.float32)
    embeddings_way = metrics.compute(spec.primary_metric, predictions(entry, rows), dev_gold)

    joint = head_outputs(Graph(bundle / entry["head"]["file"]), entry, BundleTrunk(bundle, manifest), EncodedSet.build(dev, embedder.tokenizer, spec))["logits"]
    joint_way = metrics.compute(spec.primary_metric, predictions(entry, joint.reshape(len(dev), -1)), dev_gold)
    majority = None if regression else (majority_accuracy(train_gold, dev_gold), len(dev))
    return PairComparison(task, mapping, len(train), {EMBEDDINGS: embeddings_way, JOINT_PASS: joint_way}, majority)


def reads_embeddings_of(entry: dict, embedding: str) -> bool:
    """Whether a pair task is computed from the embeddings of task `embedding` (`output.source`)."""
    source = entry["output"].get("source") or {}
    return source.get("way") == EMBEDDINGS and source.get("embedding") == embedding


def source_problems(manifest: dict, task: dict) -> list[str]:
    """`bundle verify` of a task's `output.source`: the service's rules (docs/bundle-format.md), as field: problem."""
    source = task["output"].get("source")
    if source is None or source.get("way") == JOINT_PASS:
        return []
    if source.get("way") != EMBEDDINGS:
        return [f"source.way: unknown way {source.get('way')!r} (expected {JOINT_PASS} | {EMBEDDINGS})"]
    problems = []
    if not any(t["name"] == source.get("embedding") and t["output"]["kind"] == "embedding" for t in manifest["tasks"]):
        problems.append(f"source.embedding: no embedding task {source.get('embedding')!r}")
    features, weights = source.get("features") or [], source.get("weights") or []
    if not features or any(f not in FEATURES for f in features):
        problems.append(f"source.features: must list 1 or more of {' | '.join(FEATURES)}")
    if len(weights) != len(features) or not all(isinstance(w, (int, float)) and np.isfinite(w) for w in weights):
        problems.append("source.weights: must be one finite number per feature")
    if not isinstance(source.get("bias"), (int, float)) or not np.isfinite(source["bias"]):
        problems.append("source.bias: must be a finite number")
    problems += [f"{key}: the joint head's; with way {EMBEDDINGS} it belongs under source.jointPass" for key in JOINT_ONLY_OUTPUT if key in task["output"]]
    return problems


def source_entry(comparison: PairComparison, embedding: str, regression: bool, seed: int) -> dict:
    """The task's `output.source` for the better way; both dev scores recorded."""
    dev = {way: {k: round(v, 4) for k, v in values.items()} for way, values in comparison.dev.items()}
    return {
        "way": comparison.better,
        "embedding": embedding,
        "features": list(FEATURES),
        "weights": [round(w, 7) for w in comparison.mapping.weights],
        "bias": round(comparison.mapping.bias, 7),
        "fit": {"split": "train", "examples": comparison.train_examples, "loss": "least squares" if regression else "cross-entropy", "seed": seed},
        "dev": dev,
    }


def apply(bundle: Path, comparison: PairComparison, embedding: str | None = None, seed: int = 0, version: str | None = None) -> dict:
    """Writes the better way into the task's manifest entry (and its parity outputs) and bumps the bundle version."""
    from .bundle import bump_version

    manifest = read_manifest(bundle)
    entry, source_task = _check_task(manifest, comparison.task, bundle), embedding_task(manifest, embedding, bundle)
    output = entry["output"]
    previous = output.pop("source", None) or {}
    kept = previous.get(JOINT_PASS) or {}
    source = source_entry(comparison, source_task["name"], _is_regression(entry), seed)
    if source["way"] == EMBEDDINGS:
        moved = {k: output.pop(k) for k in JOINT_ONLY_OUTPUT if k in output} | kept
        if moved:
            source[JOINT_PASS] = moved  # the joint head's own calibration, restored if it is served again
    else:
        output.update(kept)  # back to the joint pass: its temperature and fallback return
    output["source"] = source
    if comparison.majority is not None and "accuracy" in comparison.dev[source["way"]]:
        # The out-of-domain issue's rule for the default answer, on the way now served.
        entry["servedByDefault"] = beats_majority(comparison.dev[source["way"]]["accuracy"], *comparison.majority)
    entry["version"] += 1
    manifest["version"] = version or bump_version(manifest["version"])
    _write_parity(bundle, manifest, entry, source_task)
    write_json_atomic(bundle / MANIFEST, manifest)
    return entry


def _write_parity(bundle: Path, manifest: dict, entry: dict, source_task: dict) -> None:
    """The served output row of every pair parity case, from the bundle's graphs: from the two
    embeddings (each text alone, as the service embeds them), or the joint head's (and its distance)."""
    path = bundle / PARITY
    if not path.is_file():
        return
    parity = json.loads(path.read_text(encoding="utf-8"))
    source, name = entry["output"]["source"], entry["name"]
    embedder = GraphEmbedder(bundle, manifest, source_task)
    mapping, joint = PairMapping(source["weights"], source["bias"]), Graph(bundle / entry["head"]["file"])
    for case in parity["cases"]:
        if case["textPair"] is None or name not in case["outputs"]:
            continue
        if source["way"] == EMBEDDINGS:
            u, v = embedder.embed([case["text"]])[0], embedder.embed([case["textPair"]])[0]
            case["outputs"][name] = [round(x, 7) for x in mapping.row(float(u @ v), _is_regression(entry))]
            case.get("distances", {}).pop(name, None)  # no head runs, so no out-of-domain distance
            continue
        ids, types = torch.tensor([case["inputIds"]]), torch.tensor([case["tokenTypeIds"]])
        states = embedder.trunk(ids, torch.ones_like(ids), types)
        out = _joint_outputs(joint, entry, states, torch.ones_like(ids))
        case["outputs"][name] = [round(float(x), 7) for x in out[entry["head"]["output"]].flatten()]
        if (distance := entry["head"].get("outOfDomain")) is not None:
            case.setdefault("distances", {})[name] = round(float(out[distance["output"]].flatten()[0]), 4)
    write_json_atomic(path, parity)


def _joint_outputs(graph: Graph, entry: dict, states: dict[int, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    inputs, distance = entry["head"]["inputs"], entry["head"].get("outOfDomain") or {}
    feeds = {inputs["hiddenStates"]: states[entry["branchLayer"]], inputs.get("attentionMask") or "attention_mask": mask}
    if distance.get("hiddenStates"):
        feeds[distance["hiddenStates"]] = states[distance["layer"]]
    return graph.run({k: v for k, v in feeds.items() if k in graph.input_names})
