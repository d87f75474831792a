"""The sentence embedding as a head, and tasks defined by examples (docs/bundle-format.md,
"Embedding and examples tasks").

The embedding head is the checkpoint's layers above the branch layer (for all-MiniLM-L6-v2 on the
default five-layer trunk: its sixth), then the mean of the token vectors over the attention mask,
L2-normalised: what sentence-transformers computes for the checkpoint. An examples task has no head
of its own: it reads the embedding head's output and answers the label of the nearest per-label
centroid of its example utterances (stored in a small content-addressed file under `examples/`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .checkpoint import Checkpoint, load_checkpoint, sha256_file
from .export import export_embedding_head, head_metadata
from .manifest_file import MANIFEST, PARITY, BundleError, int8_matmuls, read_manifest, write_json_atomic
from .modeling import BertLayer, Trunk, extended_attention_mask, quantize_layer_matmuls
from .tokenization import WordPieceTokenizer, read_vocab
from .train import build_trunk, round_to_fp16

EMBEDDING_KIND, EXAMPLES_KIND = "embedding", "examples"
# Limits of an examples task; the service's admin API has the same (ExamplesLimits).
MAX_LABELS, MAX_EXAMPLES_PER_LABEL, MAX_EXAMPLES, MAX_EXAMPLE_CHARS, MAX_LABEL_CHARS = 512, 256, 10_000, 2000, 200
# Softmax scale of the cosines an examples task answers as scores (the scale of contrastive training).
COSINE_SCALE = 20.0


class EmbeddingHead(nn.Module):
    """Encoder layers above the branch layer, mean pooling over the mask, L2 normalisation: [batch, hidden]."""

    def __init__(self, layers: list[BertLayer]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(layers)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = extended_attention_mask(attention_mask)
        for layer in self.layer:
            hidden_states = layer(hidden_states, mask)
        weights = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
        pooled = (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2.0, dim=1)


def build_embedding_head(checkpoint: Checkpoint, branch_layer: int, int8: bool) -> EmbeddingHead:
    """The pretrained layers branch_layer+1..N as a bundle serves them: float16-rounded weights,
    and int8 matmuls when `int8` (as the bundle's trunk: `trunk.int8Matmuls`)."""
    config = checkpoint.config
    if not 1 <= branch_layer < config.num_hidden_layers:
        raise BundleError(f"--branch-layer {branch_layer}: must be in 1..{config.num_hidden_layers - 1} (the checkpoint has {config.num_hidden_layers} layers)")
    layers = []
    for index in range(branch_layer, config.num_hidden_layers):
        layer = BertLayer(config)
        prefix = f"encoder.layer.{index}."
        layer.load_state_dict({name: checkpoint.weights[prefix + name] for name in layer.state_dict()})
        layers.append(layer)
    head = EmbeddingHead(layers)
    round_to_fp16(head)
    if int8:
        for layer in head.layer:
            quantize_layer_matmuls(layer)
    return head.eval()


def reference_model(checkpoint: Checkpoint) -> Trunk:
    """The whole checkpoint in float32 (no rounding, no int8): the reference the served embedding is measured against."""
    trunk = Trunk(checkpoint.config, checkpoint.config.num_hidden_layers)
    trunk.load_pretrained(checkpoint.weights)
    return trunk.eval()


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9), p=2.0, dim=1)


def _by_length(texts: list[str]) -> list[int]:
    """The order that batches texts of similar length together (less padding); results are put back in input order."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def _batches(tokenizer: WordPieceTokenizer, texts: list[str], size: int, desc: str):  # noqa: ANN202 - generator of tensors
    for start in tqdm(range(0, len(texts), size), desc=desc, disable=len(texts) <= size):
        encodings = [tokenizer.encode(t) for t in texts[start : start + size]]
        width = max(len(e.input_ids) for e in encodings)
        ids = torch.zeros(len(encodings), width, dtype=torch.long)
        mask = torch.zeros(len(encodings), width, dtype=torch.long)
        for row, e in enumerate(encodings):
            ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
            mask[row, : len(e.input_ids)] = 1
        yield ids, mask


class ServedEmbedder:
    """The embedding exactly as a bundle serves it: its trunk (int8 when the bundle's is) to the
    branch layer, then the embedding head."""

    def __init__(self, checkpoint: Checkpoint, tokenizer: WordPieceTokenizer, branch_layer: int, int8: bool) -> None:
        self.tokenizer, self.branch_layer = tokenizer, branch_layer
        self.trunk = build_trunk(checkpoint, branch_layer, int8)
        self.head = build_embedding_head(checkpoint, branch_layer, int8)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        order, rows = _by_length(texts), []
        with torch.no_grad():
            for ids, mask in _batches(self.tokenizer, [texts[i] for i in order], batch_size, "embed"):
                hidden = self.trunk(ids, mask, torch.zeros_like(ids))[self.branch_layer]
                rows.append(self.head(hidden, mask))
        return _unsort(torch.cat(rows).numpy(), order)


def reference_embeddings(checkpoint: Checkpoint, tokenizer: WordPieceTokenizer, texts: list[str], batch_size: int = 64) -> np.ndarray:
    model, rows, order = reference_model(checkpoint), [], _by_length(texts)
    with torch.no_grad():
        for ids, mask in _batches(tokenizer, [texts[i] for i in order], batch_size, "reference"):
            rows.append(mean_pool(model(ids, mask, torch.zeros_like(ids))[-1], mask))
    return _unsort(torch.cat(rows).numpy(), order)


def _unsort(rows: np.ndarray, order: list[int]) -> np.ndarray:
    result = np.empty_like(rows)
    result[order] = rows
    return result


def bundle_tokenizer(bundle: Path, manifest: dict) -> WordPieceTokenizer:
    t = manifest["tokenizer"]
    return WordPieceTokenizer(read_vocab(bundle / t["vocabFile"]), lowercase=t["lowercase"], strip_accents=t["stripAccents"], max_length=t["maxSequenceLength"])


def _bundle_checkpoint(manifest: dict, pretrained: str | Path) -> Checkpoint:
    checkpoint = load_checkpoint(pretrained)
    expected = manifest["trunk"]["pretrained"]["fingerprint"]
    if checkpoint.fingerprint != expected:
        raise BundleError(f"{pretrained}: fingerprint {checkpoint.fingerprint[:12]}… differs from the bundle's trunk.pretrained.fingerprint {expected[:12]}…")
    return checkpoint


def add_embedding(bundle: Path, pretrained: str | Path, name: str = "embedding", branch_layer: int | None = None, version: str | None = None) -> dict:
    """Adds (or replaces) the embedding task `name`: head file `heads/<name>.onnx`, manifest entry,
    parity outputs. The branch layer defaults to the deepest the trunk outputs."""
    from .bundle import bump_version, valid_task_name

    manifest = read_manifest(bundle)
    if not valid_task_name(name):
        raise BundleError(f"--name {name!r}: not a valid task name")
    checkpoint = _bundle_checkpoint(manifest, pretrained)
    layers = [o["layer"] for o in manifest["trunk"]["outputs"]]
    branch = branch_layer if branch_layer is not None else max(layers)
    if branch not in layers:
        raise BundleError(f"{bundle / MANIFEST}: trunk.outputs has no layer {branch} (outputs {layers}); add a head there with `bundle add` first")
    int8 = int8_matmuls(manifest)
    head = build_embedding_head(checkpoint, branch, int8)
    head_file = f"heads/{name}.onnx"
    export_embedding_head(head, checkpoint.config.hidden_size, bundle / head_file, head_metadata(branch, "single", checkpoint.fingerprint))
    old = next((t for t in manifest["tasks"] if t["name"] == name), None)
    if old is not None and old["output"]["kind"] != EMBEDDING_KIND:
        raise BundleError(f"{bundle / MANIFEST}: task {name!r} exists and is a {old['output']['kind']} task")
    entry = {
        "name": name,
        "version": old["version"] + 1 if old else 1,
        "description": f"Sentence embedding of {checkpoint.name}: {_layers_above(branch, checkpoint.config.num_hidden_layers)}, mean pooling, L2-normalised.",
        "input": "single",
        "branchLayer": branch,
        "output": {"kind": EMBEDDING_KIND, "dimensions": checkpoint.config.hidden_size, "pooling": "mean", "normalize": True},
        "head": {"file": head_file, "sha256": sha256_file(bundle / head_file), "numLayers": len(head.layer),
                 "inputs": {"hiddenStates": "hidden_states", "attentionMask": "attention_mask"}, "output": "embedding"},
        "pretrainedFingerprint": checkpoint.fingerprint,
    }
    if "float16" in manifest["trunk"] and int8:
        from .float16 import write_float_head

        float_file = f"heads/{name}.float.onnx"
        write_float_head(bundle / head_file, bundle / float_file)
        entry["head"]["float"] = {"file": float_file, "sha256": sha256_file(bundle / float_file)}
    manifest["tasks"] = sorted([t for t in manifest["tasks"] if t["name"] != name] + [entry], key=lambda t: t["name"])
    manifest["version"] = version or bump_version(manifest["version"])
    _add_parity(bundle, manifest, checkpoint, name, branch)
    write_json_atomic(bundle / MANIFEST, manifest)
    return entry


def _layers_above(branch: int, depth: int) -> str:
    return f"layer {depth}" if branch + 1 == depth else f"layers {branch + 1}-{depth}"


def _add_parity(bundle: Path, manifest: dict, checkpoint: Checkpoint, name: str, branch: int) -> None:
    """The served embedding of every single-text parity case, as PyTorch computes it."""
    path = bundle / PARITY
    if not path.is_file():
        return
    parity = json.loads(path.read_text(encoding="utf-8"))
    embedder = ServedEmbedder(checkpoint, bundle_tokenizer(bundle, manifest), branch, int8_matmuls(manifest))
    with torch.no_grad():
        for case in parity["cases"]:
            case["outputs"].pop(name, None)
            if case["textPair"] is None:  # one at a time: the service must agree for each input alone
                ids = torch.tensor([case["inputIds"]])
                mask = torch.ones_like(ids)
                hidden = embedder.trunk(ids, mask, torch.tensor([case["tokenTypeIds"]]))[branch]
                case["outputs"][name] = [round(float(v), 7) for v in embedder.head(hidden, mask).flatten()]
    write_json_atomic(path, parity)


# ------------------------------------------------------------------------------ examples tasks
@dataclass(frozen=True)
class ExamplesModel:
    """An examples task as served: labels, one unit centroid per label, the fallback threshold."""

    labels: list[str]
    centroids: np.ndarray  # [labels, dimensions] float32, rows L2-normalised
    threshold: float  # nearest-centroid cosine below which the task answers its fallback label


def validate_examples(examples: object, field: str = "output.examples") -> dict[str, list[str]]:
    """The service's rules: a non-empty object of label -> non-empty list of non-empty texts, within the limits."""
    if not isinstance(examples, dict) or not examples:
        raise BundleError(f"{field}: must be an object mapping each label to its example utterances")
    if len(examples) > MAX_LABELS:
        raise BundleError(f"{field}: at most {MAX_LABELS} labels, got {len(examples)}")
    if len(examples) < 2:
        raise BundleError(f"{field}: needs at least 2 labels")
    for label, texts in examples.items():
        if not label.strip() or len(label) > MAX_LABEL_CHARS:
            raise BundleError(f"{field}.{label}: a label must be 1-{MAX_LABEL_CHARS} characters, not blank")
        if not isinstance(texts, list) or not texts:
            raise BundleError(f"{field}.{label}: needs at least 1 example utterance")
        if len(texts) > MAX_EXAMPLES_PER_LABEL:
            raise BundleError(f"{field}.{label}: at most {MAX_EXAMPLES_PER_LABEL} examples, got {len(texts)}")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_EXAMPLE_CHARS:
                raise BundleError(f"{field}.{label}[{i}]: must be a non-empty text of at most {MAX_EXAMPLE_CHARS} characters")
    total = sum(len(texts) for texts in examples.values())
    if total > MAX_EXAMPLES:
        raise BundleError(f"{field}: at most {MAX_EXAMPLES} examples in all, got {total}")
    return examples  # type: ignore[return-value]


def centroids_of(vectors: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """Per-label mean of unit vectors, L2-normalised again ([count, dimensions])."""
    sums = np.zeros((count, vectors.shape[1]), np.float64)
    np.add.at(sums, owners, vectors)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def leave_one_out_threshold(vectors: np.ndarray, owners: np.ndarray, count: int, quantile: float = 0.05) -> float:
    """The fallback threshold: each example's cosine to its own label's centroid computed without it
    (labels with one example have none and are skipped); the `quantile` of these, so that about 95% of
    in-scope utterances like the examples stay above it. 0 (never falls back) without any."""
    sums = np.zeros((count, vectors.shape[1]), np.float64)
    np.add.at(sums, owners, vectors)
    sizes = np.bincount(owners, minlength=count)
    cosines = []
    for vector, owner in zip(vectors, owners):
        if sizes[owner] < 2:
            continue
        rest = sums[owner] - vector
        cosines.append(float(vector @ rest / max(np.linalg.norm(rest), 1e-12)))
    return float(np.quantile(cosines, quantile)) if cosines else 0.0


def fit_examples(vectors: np.ndarray, labels: list[str], owners: np.ndarray) -> ExamplesModel:
    return ExamplesModel(labels, centroids_of(vectors, owners, len(labels)), leave_one_out_threshold(vectors, owners, len(labels)))


def flatten_examples(examples: dict[str, list[str]]) -> tuple[list[str], list[str], np.ndarray]:
    labels = list(examples)
    texts = [t for label in labels for t in examples[label]]
    owners = np.array([i for i, label in enumerate(labels) for _ in examples[label]], np.int64)
    return labels, texts, owners


def centroids_bytes(centroids: np.ndarray) -> bytes:
    """The centroid file: float32 little-endian, row-major [labels, dimensions]."""
    return np.ascontiguousarray(centroids, dtype="<f4").tobytes()


def add_examples(bundle: Path, name: str, examples: dict[str, list[str]], pretrained: str | Path, embedding: str | None = None,
                 fallback_label: str = "out_of_scope", version: str | None = None) -> dict:
    """Adds (or replaces) an examples task: embeds the examples with the bundle's embedding task as
    the service does, writes `examples/<sha256>.f32` (the centroids) and the manifest entry."""
    from .bundle import bump_version, valid_task_name

    manifest = read_manifest(bundle)
    if not valid_task_name(name):
        raise BundleError(f"--name {name!r}: not a valid task name")
    examples = validate_examples(examples)
    source = embedding_task(manifest, embedding, bundle)
    checkpoint = _bundle_checkpoint(manifest, pretrained)
    embedder = ServedEmbedder(checkpoint, bundle_tokenizer(bundle, manifest), source["branchLayer"], int8_matmuls(manifest))
    labels, texts, owners = flatten_examples(examples)
    model = fit_examples(embedder.embed(texts), labels, owners)
    content = centroids_bytes(model.centroids)
    digest = hashlib.sha256(content).hexdigest()
    file = f"examples/{digest}.f32"
    (bundle / "examples").mkdir(exist_ok=True)
    (bundle / file).write_bytes(content)
    old = next((t for t in manifest["tasks"] if t["name"] == name), None)
    if old is not None and old["output"]["kind"] != EXAMPLES_KIND:
        raise BundleError(f"{bundle / MANIFEST}: task {name!r} exists and is a {old['output']['kind']} task")
    entry = examples_entry(name, old["version"] + 1 if old else 1, source, labels, [len(examples[l]) for l in labels], file, digest, model.threshold, fallback_label)
    manifest["tasks"] = sorted([t for t in manifest["tasks"] if t["name"] != name] + [entry], key=lambda t: t["name"])
    manifest["version"] = version or bump_version(manifest["version"])
    write_json_atomic(bundle / MANIFEST, manifest)
    return entry


def examples_entry(name: str, version: int, source: dict, labels: list[str], counts: list[int], file: str, digest: str, threshold: float, fallback_label: str) -> dict:
    """The manifest entry of an examples task; its `head` is the embedding task's (the same file:
    the service runs it once for both)."""
    return {
        "name": name,
        "version": version,
        "description": f"Nearest centroid of example utterances, embedded by task {source['name']}.",
        "input": "single",
        "branchLayer": source["branchLayer"],
        "output": {
            "kind": EXAMPLES_KIND, "labels": labels, "embedding": source["name"],
            "centroids": {"file": file, "sha256": digest}, "exampleCounts": dict(zip(labels, counts)),
            "fallback": {"label": fallback_label, "rule": "cosine", "threshold": round(threshold, 6), "selection": {"leaveOneOutQuantile": 0.05}},
        },
        "head": {k: v for k, v in source["head"].items() if k != "float"} | ({"float": source["head"]["float"]} if "float" in source["head"] else {}),
        "pretrainedFingerprint": source["pretrainedFingerprint"],
    }


def embedding_task(manifest: dict, name: str | None, bundle: Path) -> dict:
    found = [t for t in manifest["tasks"] if t["output"]["kind"] == EMBEDDING_KIND and (name is None or t["name"] == name)]
    if not found:
        raise BundleError(f"{bundle / MANIFEST}: no embedding task{f' {name!r}' if name else ''}; add one with `mtbert bundle add-embedding`")
    return found[0]


def embedding_problems(bundle: Path, task: dict) -> list[str]:
    """`bundle verify` for the two kinds without a trained head: the fields and the centroid file."""
    output, problems = task["output"], []
    if output["kind"] == EMBEDDING_KIND:
        if not isinstance(output.get("dimensions"), int) or output["dimensions"] < 1:
            problems.append("dimensions: must be a positive integer")
        return problems
    centroids = output.get("centroids") or {}
    path = bundle / centroids.get("file", "")
    if not path.is_file():
        problems.append(f"centroids.file: {path} missing")
    elif hashlib.sha256(path.read_bytes()).hexdigest() != centroids.get("sha256"):
        problems.append("centroids.sha256: differs from the file's")
    return problems


def evaluate_examples(model: ExamplesModel, vectors: np.ndarray, gold: list[str], k: int = 0, train_vectors: np.ndarray | None = None, train_owners: np.ndarray | None = None) -> float:
    """Accuracy (%) of nearest centroid (k = 0) or of a k-nearest-example vote on unit vectors."""
    if k == 0:
        predicted = (vectors @ model.centroids.T).argmax(1)
    else:
        assert train_vectors is not None and train_owners is not None
        similarities = vectors @ train_vectors.T
        nearest = np.argsort(-similarities, axis=1)[:, :k]
        predicted = np.array([np.bincount(train_owners[row], weights=similarities[i, row], minlength=len(model.labels)).argmax() for i, row in enumerate(nearest)])
    index = {label: i for i, label in enumerate(model.labels)}
    return float(np.mean([p == index[g] for p, g in zip(predicted, gold)]) * 100.0)
