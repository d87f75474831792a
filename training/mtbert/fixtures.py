"""The small fixture bundle the service's tests run on: a tiny random BERT with the real
vocabulary, put through the whole pipeline (checkpoint -> heads -> ONNX -> bundle) on tiny data."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from .bundle import BundleWriter
from .embedding import add_embedding
from .checkpoint import BertConfig, write_safetensors
from .float16 import add_cuda_graphs
from .manifest_file import MANIFEST, read_manifest, write_json_atomic
from .kinds.classification import KIND as CLASSIFICATION
from .modeling import TaskHead, Trunk
from .pipeline import TaskSession
from .tokenization import read_vocab
from .train import DistillWeights, Hyper

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=128)

# (task, frozen layers): branch points differ, a pair task, a regression task and a tagging task
# (with a CRF, so the service's Viterbi is checked against PyTorch's) are included.
FIXTURE_TASKS = [("sst2", 1), ("snips", 2), ("rte", 2), ("stsb", 1), ("snips_slots", 1)]
CRF_TASKS = {"snips_slots"}
# Tasks served by a thinner distilled student (a classification and a tagging head), so the
# service's parity tests cover heads whose layers are narrower than the trunk's.
THIN_STUDENTS = {"sst2": 0.5, "snips_slots": 0.5}
DEV_EXAMPLES = 64  # tiny: the fixture's metrics are only placeholders


def trim_dev(session: TaskSession) -> None:
    """Keeps the first DEV_EXAMPLES dev examples; every per-example field is cut alike (tagging sets
    also carry per-word starts and tags, which must stay parallel to the encodings)."""
    dev = session.dev
    dev.encodings = dev.encodings[:DEV_EXAMPLES]
    dev.labels = dev.labels[:DEV_EXAMPLES]
    if dev.word_starts is not None:
        dev.word_starts = dev.word_starts[:DEV_EXAMPLES]
    if dev.word_tags is not None:
        dev.word_tags = dev.word_tags[:DEV_EXAMPLES]


def make_tiny_checkpoint(folder: Path, vocab: Path, seed: int = 0, **overrides: int) -> Path:
    """A Hugging Face-style BERT checkpoint with random weights (config.json, model.safetensors, vocab.txt)."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {**TINY, **overrides}
    words = read_vocab(vocab)
    config = BertConfig(vocab_size=len(words), **sizes)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    trunk = Trunk(config, config.num_hidden_layers)
    head = TaskHead(config, config.num_hidden_layers, CLASSIFICATION, 2)  # only for its layer shapes
    weights: dict[str, torch.Tensor] = {}
    for name, tensor in trunk.state_dict().items():
        if name.startswith("embeddings."):
            weights["bert." + name] = tensor
    for index, layer in enumerate(head.layer):
        for name, tensor in layer.state_dict().items():
            weights[f"bert.encoder.layer.{index}.{name}"] = tensor
    for name, tensor in weights.items():
        if name.endswith("weight") and tensor.ndim == 2:
            torch.nn.init.normal_(tensor, std=0.02)
    write_safetensors(folder / "model.safetensors", weights)
    raw = {**config.to_dict(), "model_type": "bert", "architectures": ["BertForMaskedLM"]}
    (folder / "config.json").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    (folder / "vocab.txt").write_text("".join(f"{word}\n" for word in words), encoding="utf-8")  # `vocab` may be gzipped
    return folder


def build_fixture_bundle(out: Path, data_root: Path, vocab: Path, train_examples: int = 48) -> None:
    """Writes the fixture bundle to `out` (replaced). `vocab` (plain or gzipped) may lie inside `out`,
    e.g. the committed fixture's own vocab.txt.gz: it is read before `out` is removed."""
    with tempfile.TemporaryDirectory() as temp:
        checkpoint = make_tiny_checkpoint(Path(temp) / "tiny-bert-2l-32", vocab)
        runs = Path(temp) / "runs"
        if out.exists():
            shutil.rmtree(out)
        writer = BundleWriter(out)
        for task, frozen in FIXTURE_TASKS:
            session = TaskSession.open(checkpoint, data_root, task, max_train=train_examples, max_length=32, crf=task in CRF_TASKS)
            trim_dev(session)
            hyper = Hyper(epochs=1, batch_size=16, lr=1e-3)
            info, teacher = session.partial(frozen, hyper, runs / task)
            run = runs / task
            if task in THIN_STUDENTS:
                run = runs / f"{task}-thin"
                session.distill(teacher, info, info.head_layers, hyper, DistillWeights(), run, teacher_dir=task, width=THIN_STUDENTS[task])
            writer.add(run, name="tiny-fixture", version="1.0.0", max_length=32, ood=False)  # calibrated once, below
        # The CUDA graphs too (float16 trunk), so the service's tests cover loading and choosing them.
        add_cuda_graphs(out, data_root, checkpoint, max_dev=DEV_EXAMPLES)
        add_fixture_embedding(out, checkpoint)
        # Every classification head gets the out-of-domain distance, a temperature and the
        # served-by-default decision, as the toolkit gives every bundle; the version stays.
        writer.calibrate(data_root, checkpoint, version="1.0.0", max_train=500)
        # The fixture's random heads are at chance by construction; the service's tests need them in
        # the default selection (the served-by-default rule is tested on an edited copy).
        manifest = read_manifest(out)
        for task in manifest["tasks"]:
            task.pop("servedByDefault", None)
        write_json_atomic(out / MANIFEST, manifest)


def add_fixture_embedding(out: Path, checkpoint: Path) -> None:
    """The embedding task (the checkpoint's top layer above trunk layer 1, mean pooled), so the
    service's tests cover the embedding kind and the examples tasks that read it."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    add_embedding(out, checkpoint, branch_layer=1, version=manifest["version"])
