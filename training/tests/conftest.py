from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mtbert.fixtures import make_tiny_checkpoint

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VOCAB = SHARED / "pretrained" / "bert-6l-256-uncased" / "vocab.txt"
DATA = SHARED / "data"

torch.set_num_threads(2)


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
    """A few lines of real tasks, in the shared/data layout (tasks.json + jsonl)."""
    root = tmp_path_factory.mktemp("data")
    tasks = json.loads((DATA / "tasks.json").read_text(encoding="utf-8"))
    (root / "tasks.json").write_text(json.dumps(tasks), encoding="utf-8")
    for task in ("sst2", "snips", "stsb", "rte", "snips_slots", "atis_slots"):
        (root / task).mkdir()
        for split, count in (("train", 64), ("dev", 32)):
            lines = (DATA / task / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
            (root / task / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
