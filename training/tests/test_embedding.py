"""The embedding head and tasks defined by examples (issue #27), on a copy of the fixture bundle and
its tiny checkpoint (remade here from its seed: the same fingerprint)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mtbert.bundle import BundleWriter, verify
from mtbert.checkpoint import load_checkpoint
from mtbert.embedding import (
    BundleError, ServedEmbedder, add_embedding, add_examples, bundle_tokenizer, leave_one_out_threshold, reference_embeddings, validate_examples,
)
from mtbert.fixtures import make_tiny_checkpoint
from mtbert.onnx_eval import Graph

from .conftest import REPO, VOCAB

FIXTURE = REPO / "tests" / "fixtures" / "tiny-bundle"
TEXTS = ["the movie was great", "Book a table for two at 8 pm", "will it rain in Paris tomorrow?"]
EXAMPLES = {"greet": ["hello there", "good morning"], "weather": ["will it rain tomorrow", "is it sunny"], "music": ["play some jazz"]}


@pytest.fixture(scope="module")
def fixture_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-bert-2l-32", VOCAB)


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "bundle"))


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def _task(bundle: Path, name: str) -> dict:
    return next(t for t in _manifest(bundle)["tasks"] if t["name"] == name)


def test_the_exported_head_computes_the_served_embedding_and_its_entry_says_what_it_is(bundle: Path, fixture_checkpoint: Path) -> None:
    entry = add_embedding(bundle, fixture_checkpoint, branch_layer=1)
    manifest = _manifest(bundle)
    embedder = ServedEmbedder(load_checkpoint(fixture_checkpoint), bundle_tokenizer(bundle, manifest), 1, int8=False)
    trunk, head = Graph(bundle / "trunk.onnx"), Graph(bundle / entry["head"]["file"])
    for text in TEXTS:
        encoding = bundle_tokenizer(bundle, manifest).encode(text)
        ids = torch.tensor([encoding.input_ids])
        mask = torch.ones_like(ids)
        hidden = trunk.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)})["hidden_1"]
        vector = head.run({"hidden_states": hidden, "attention_mask": mask})["embedding"][0].numpy()
        assert np.allclose(vector, embedder.embed([text])[0], atol=1e-5)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert entry["output"] == {"kind": "embedding", "dimensions": 32, "pooling": "mean", "normalize": True}
    assert entry["version"] == 2  # the fixture already has it: replaced
    assert verify(bundle) == []


def test_the_served_embedding_agrees_with_the_float32_checkpoint(bundle: Path, fixture_checkpoint: Path) -> None:
    checkpoint = load_checkpoint(fixture_checkpoint)
    tokenizer = bundle_tokenizer(bundle, _manifest(bundle))
    served = ServedEmbedder(checkpoint, tokenizer, 1, int8=False).embed(TEXTS)
    reference = reference_embeddings(checkpoint, tokenizer, TEXTS)
    cosines = np.sum(served * reference, axis=1)
    # float16 weights and the int8 word table (the served trunk) against float32 everything.
    assert cosines.min() > 0.99


def test_an_examples_task_stores_its_centroids_content_addressed_and_reads_the_embedding_head(bundle: Path, fixture_checkpoint: Path) -> None:
    entry = add_examples(bundle, "intents", EXAMPLES, fixture_checkpoint)
    output = entry["output"]
    data = (bundle / output["centroids"]["file"]).read_bytes()
    centroids = np.frombuffer(data, "<f4").reshape(3, 32)

    assert output["centroids"]["file"] == f"examples/{hashlib.sha256(data).hexdigest()}.f32"
    assert output["labels"] == ["greet", "weather", "music"] and output["exampleCounts"] == {"greet": 2, "weather": 2, "music": 1}
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-6)
    assert entry["head"] == _task(bundle, "embedding")["head"]
    assert output["fallback"]["rule"] == "cosine" and -1 <= output["fallback"]["threshold"] <= 1
    assert verify(bundle) == []
    # Removing the examples task leaves the embedding's head file in place.
    BundleWriter(bundle).remove("intents")
    assert (bundle / entry["head"]["file"]).is_file() and verify(bundle) == []


@pytest.mark.parametrize(("examples", "message"), [
    ({"a": ["x"]}, "at least 2 labels"),
    ({"a": ["x"], "b": []}, "output.examples.b: needs at least 1 example"),
    ({"a": ["x"], "b": [""]}, r"output.examples.b\[0\]"),
    ([], "must be an object"),
])
def test_bad_examples_are_refused_naming_the_field(examples: object, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        validate_examples(examples)


def test_the_leave_one_out_threshold_is_a_low_quantile_of_held_out_cosines() -> None:
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0.6, 0.8]], np.float32)
    owners = np.array([0, 0, 1, 1, 1])
    threshold = leave_one_out_threshold(vectors, owners, 2)
    assert 0.5 < threshold < 1.0  # the odd one out of label 1 sits at cosine ~0.8-0.9 from the rest
    assert leave_one_out_threshold(vectors[:2], np.array([0, 1]), 2) == 0.0  # one example per label: no measure
    assert torch.tensor(threshold).isfinite()
