"""Tests on the real datasets and checkpoints of ../shared (skipped without it; see conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtbert.checkpoint import load_checkpoint
from mtbert.cli import DEFAULT_PRETRAINED
from mtbert.data import KIND_BY_SOURCE, load_task_spec, read_examples
from mtbert.fixtures import build_fixture_bundle
from mtbert.tokenization import read_vocab

from .conftest import REPO, SHARED, VOCAB
from .synthetic import write_synthetic_data

pytestmark = pytest.mark.shared
DATA = SHARED / "data"


def test_the_synthetic_tasks_have_the_real_kinds_and_labels(tmp_path: Path) -> None:
    """The tests' generated tasks stand in for the real ones: same kind, same labels (tagging: only real tags)."""
    synthetic = json.loads((write_synthetic_data(tmp_path) / "tasks.json").read_text(encoding="utf-8"))["tasks"]
    real = json.loads((DATA / "tasks.json").read_text(encoding="utf-8"))["tasks"]
    for task, info in synthetic.items():
        assert info["kind"] == real[task]["kind"], task
        for field in ("labels", "label_names", "label_range"):
            assert info.get(field) == real[task].get(field), f"{task}.{field}"
        assert set(info.get("tags", [])) <= set(real[task].get("tags", [])), task


def test_every_real_task_with_training_data_has_a_spec_and_readable_lines(tmp_path: Path) -> None:
    tasks = json.loads((DATA / "tasks.json").read_text(encoding="utf-8"))["tasks"]
    trainable = [t for t, info in tasks.items() if info["kind"] in KIND_BY_SOURCE and (DATA / t / "train.jsonl").is_file()]
    assert len(trainable) >= 12
    for task in trainable:
        spec = load_task_spec(DATA, task)
        for split in ("train", "dev"):
            head = (DATA / task / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:200]
            (tmp_path / f"{task}-{split}.jsonl").write_text("\n".join(head) + "\n", encoding="utf-8")
            assert len(read_examples(tmp_path / f"{task}-{split}.jsonl", spec)) == len(head)


def test_the_default_checkpoint_loads_with_the_repository_vocabulary() -> None:
    checkpoint = load_checkpoint(DEFAULT_PRETRAINED)
    assert read_vocab(checkpoint.vocab_path) == read_vocab(VOCAB)


def test_regenerating_the_fixture_bundle_gives_the_committed_bytes(tmp_path: Path) -> None:
    """`mtbert fixtures` (real data, the fixture's own vocabulary) reproduces tests/fixtures/tiny-bundle:
    the service's tests and the toolkit agree on what the fixture is."""
    committed = REPO / "tests" / "fixtures" / "tiny-bundle"
    build_fixture_bundle(tmp_path / "fixture", DATA, VOCAB)
    files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "fixture") for p in (tmp_path / "fixture").rglob("*") if p.is_file())
    for name in files:
        assert (tmp_path / "fixture" / name).read_bytes() == (committed / name).read_bytes(), name
