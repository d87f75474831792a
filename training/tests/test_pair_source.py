"""Pair tasks from two embeddings (issue #27 item 4, `mtbert bundle pair-source`) on a copy of the
fixture bundle and the synthetic stsb/rte data: the mapping's fit, both ways scored, the better one
written with both dev scores, the joint head's calibration kept aside and restored, parity rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtbert.bundle import BundleWriter, bump_version, verify
from mtbert.manifest_file import BundleError, read_manifest
from mtbert.pair_source import (
    EMBEDDINGS, JOINT_PASS, GraphEmbedder, PairComparison, PairMapping, apply, compare, fit_least_squares, fit_logistic,
)

from .conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "tiny-bundle"
TRAINING = REPO / "training"


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "bundle"))


def _task(bundle: Path, name: str) -> dict:
    return next(t for t in read_manifest(bundle)["tasks"] if t["name"] == name)


def test_least_squares_and_the_logistic_recover_the_mapping_that_made_the_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(20_000, 1))
    weights, bias = fit_least_squares(x, 2.5 * x[:, 0] + 0.7 + rng.normal(0, 0.1, len(x)))
    assert abs(weights[0] - 2.5) < 0.01 and abs(bias - 0.7) < 0.01
    labels = (rng.uniform(size=len(x)) < 1 / (1 + np.exp(-(3 * x[:, 0] - 1)))).astype(float)
    weights, bias = fit_logistic(x, labels)
    assert abs(weights[0] - 3) < 0.2 and abs(bias + 1) < 0.1
    # Separable data stays finite (the small L2).
    weights, bias = fit_logistic(x, (x[:, 0] > 0).astype(float))
    assert np.isfinite(weights).all() and np.isfinite(bias) and weights[0] > 0


def test_the_better_way_is_written_with_both_dev_scores_and_the_parity_rows_are_the_embeddings(bundle: Path, tiny_data: Path) -> None:
    comparison = compare(bundle, tiny_data, "stsb", max_train=48)
    assert set(comparison.dev) == {EMBEDDINGS, JOINT_PASS}
    assert {"pearson", "spearman", "score"} <= set(comparison.dev[EMBEDDINGS])
    entry = apply(bundle, comparison, version="9.9.9")

    source = entry["output"]["source"]
    assert source["way"] == comparison.better
    assert source["dev"][EMBEDDINGS]["score"] == pytest.approx(comparison.dev[EMBEDDINGS]["score"], abs=1e-4)
    assert source["dev"][JOINT_PASS]["score"] == pytest.approx(comparison.dev[JOINT_PASS]["score"], abs=1e-4)
    assert source["fit"] == {"split": "train", "examples": 48, "loss": "least squares", "seed": 0}
    assert read_manifest(bundle)["version"] == "9.9.9" and entry["version"] == _task(FIXTURE, "stsb")["version"] + 1
    assert verify(bundle) == []

    # Forced to the embeddings way: each pair case's parity row is z from the two texts embedded alone.
    forced = PairComparison("stsb", comparison.mapping, 48, {EMBEDDINGS: {"score": 2.0}, JOINT_PASS: {"score": 1.0}})
    apply(bundle, forced)
    manifest = read_manifest(bundle)
    embedder = GraphEmbedder(bundle, manifest, _task(bundle, "embedding"))
    cases = [c for c in json.loads((bundle / "parity.json").read_text())["cases"] if c["textPair"] is not None]
    assert cases
    for case in cases:
        u, v = embedder.embed([case["text"], case["textPair"]])
        assert case["outputs"]["stsb"] == pytest.approx(comparison.mapping.row(float(u @ v), regression=True), abs=1e-6)


def test_a_classification_served_from_embeddings_keeps_the_joint_heads_calibration_aside_and_gets_it_back(bundle: Path, tiny_data: Path) -> None:
    original = _task(bundle, "rte")
    original_parity = json.loads((bundle / "parity.json").read_text())
    mapping = compare(bundle, tiny_data, "rte", max_train=48).mapping
    better = {EMBEDDINGS: {"score": 2.0}, JOINT_PASS: {"score": 1.0}}

    apply(bundle, PairComparison("rte", mapping, 48, better))
    output = _task(bundle, "rte")["output"]
    assert output["source"]["way"] == EMBEDDINGS and output["source"]["fit"]["loss"] == "cross-entropy"
    assert "fallback" not in output and "temperature" not in output
    assert output["source"][JOINT_PASS] == {"temperature": original["output"]["temperature"], "fallback": original["output"]["fallback"]}
    assert all("rte" not in c.get("distances", {}) for c in json.loads((bundle / "parity.json").read_text())["cases"])
    assert verify(bundle) == []
    # Served by default is decided again on the way now served (the majority class's rule of calibrate).
    apply(bundle, PairComparison("rte", mapping, 48, {EMBEDDINGS: {"score": 2.0, "accuracy": 74.3}, JOINT_PASS: {"score": 1.0, "accuracy": 69.6}}, (68.4, 408)))
    assert _task(bundle, "rte")["servedByDefault"] is True
    apply(bundle, PairComparison("rte", mapping, 48, {EMBEDDINGS: {"score": 2.0, "accuracy": 69.0}, JOINT_PASS: {"score": 1.0, "accuracy": 69.6}}, (68.4, 408)))
    assert _task(bundle, "rte")["servedByDefault"] is False
    apply(bundle, PairComparison("rte", mapping, 48, better))

    apply(bundle, PairComparison("rte", mapping, 48, {EMBEDDINGS: {"score": 1.0}, JOINT_PASS: {"score": 2.0}}))
    output = _task(bundle, "rte")["output"]
    assert output["source"]["way"] == JOINT_PASS and JOINT_PASS not in output["source"]
    assert (output["temperature"], output["fallback"]) == (original["output"]["temperature"], original["output"]["fallback"])
    # The joint head's parity rows and distances again (the exported graph evaluated, as the toolkit's PyTorch head computed them).
    for before, after in zip(original_parity["cases"], json.loads((bundle / "parity.json").read_text())["cases"]):
        if "rte" in before["outputs"]:
            assert after["outputs"]["rte"] == pytest.approx(before["outputs"]["rte"], abs=1e-4)
            assert after["distances"]["rte"] == pytest.approx(before["distances"]["rte"], rel=1e-4)


@pytest.mark.parametrize(("change", "problem"), [
    ({"way": "both"}, "output.source.way: unknown way"),
    ({"embedding": "sst2"}, "output.source.embedding: no embedding task 'sst2'"),
    ({"features": ["euclidean"]}, "output.source.features"),
    ({"weights": [1.0, 2.0]}, "output.source.weights"),
    ({"weights": [float("nan")]}, "output.source.weights"),
    ({"bias": float("inf")}, "output.source.bias"),
])
def test_verify_finds_what_the_service_refuses_in_a_source(bundle: Path, change: dict, problem: str) -> None:
    manifest = read_manifest(bundle)
    entry = next(t for t in manifest["tasks"] if t["name"] == "stsb")
    entry["output"]["source"] = {"way": "embeddings", "embedding": "embedding", "features": ["cosine"], "weights": [4.0], "bias": 1.0} | change
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    assert any(f"tasks[stsb].{problem}" in p for p in verify(bundle)), verify(bundle)


def test_the_mapping_makes_the_row_the_service_answers() -> None:
    mapping = PairMapping([4.0], 1.0)
    assert mapping.row(0.5, regression=True) == [3.0]
    assert mapping.row(0.5, regression=False) == [0.0, 3.0]


def test_a_task_that_is_not_a_pair_task_of_one_or_two_outputs_is_refused(bundle: Path, tiny_data: Path) -> None:
    with pytest.raises(BundleError, match="'snips' is not a pair regression or two-label classification task"):
        compare(bundle, tiny_data, "snips")


def test_from_the_command_line(bundle: Path, tiny_data: Path) -> None:
    before = read_manifest(bundle)["version"]
    done = subprocess.run([sys.executable, "-m", "mtbert", "bundle", "pair-source", str(bundle), "--data", str(tiny_data), "--task", "stsb,rte", "--max-train", "32"],
                          cwd=TRAINING, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stsb dev, jointPass: pearson" in done.stdout and "stsb dev, embeddings: pearson" in done.stdout
    assert "rte dev, jointPass: accuracy" in done.stdout
    for task in ("stsb", "rte"):
        assert f"task {task} served from {_task(bundle, task)['output']['source']['way']}" in done.stdout
    assert read_manifest(bundle)["version"] == bump_version(before)  # one new bundle version for the command


def test_an_embedding_task_a_pair_task_reads_cannot_be_removed(bundle: Path, tiny_data: Path) -> None:
    mapping = compare(bundle, tiny_data, "rte", max_train=48).mapping
    apply(bundle, PairComparison("rte", mapping, 48, {EMBEDDINGS: {"score": 2.0}, JOINT_PASS: {"score": 1.0}}))
    embedding = next(t["name"] for t in json.loads((bundle / "manifest.json").read_text())["tasks"] if t["output"]["kind"] == "embedding")
    with pytest.raises(BundleError, match=f"task '{embedding}' cannot be removed: rte computed from its embeddings"):
        BundleWriter(bundle).remove(embedding)
    BundleWriter(bundle).remove("rte")  # the reader first: then the embedding task goes
    BundleWriter(bundle).remove(embedding)
    assert verify(bundle) == []
