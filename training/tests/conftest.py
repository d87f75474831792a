"""Test fixtures. Every test runs from the repository alone: the vocabulary is the fixture bundle's
(bert-base-uncased's), checkpoints are tiny random BERTs made here, and the data is six tiny synthetic
tasks generated from a seed (`tests/synthetic.py`; no copy of the real datasets is committed).
Tests marked `shared` read the real datasets and checkpoints in `../shared`; they are skipped when
it is absent, unless MTBERT_REQUIRE_SHARED=1 (CI), which makes its absence a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mtbert.fixtures import make_tiny_checkpoint

from .synthetic import write_synthetic_data

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VOCAB = REPO / "tests" / "fixtures" / "tiny-bundle" / "vocab.txt.gz"
SKIP_REASON = f"{SHARED} not found (the real datasets and pretrained checkpoints)"

torch.set_num_threads(2)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared: needs ../shared (real datasets, pretrained checkpoints)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED.is_dir():
        return
    if os.environ.get("MTBERT_REQUIRE_SHARED") == "1":
        raise pytest.UsageError(f"MTBERT_REQUIRE_SHARED=1 but {SKIP_REASON}")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer, hidden-32 BERT with random weights and the real vocabulary."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-3l", VOCAB, seed=1, num_hidden_layers=3)


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same shape, other random weights: heads from it must not fit bundles of the first."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-other", VOCAB, seed=2, num_hidden_layers=3)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic tasks (64 train, 32 dev lines each) in the shared/data layout (tasks.json + <task>/{train,dev}.jsonl)."""
    return write_synthetic_data(tmp_path_factory.mktemp("data"))
