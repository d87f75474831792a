"""Label sanity before training (rare and look-alike labels refused, counts printed) and the
per-label dev table of a head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from mtbert.data import TaskSpec
from mtbert.encoded import EncodedSet
from mtbert.labels import dev_scores, dev_table, label_problems

TRAINING = Path(__file__).resolve().parents[1]


def test_rare_and_look_alike_labels_are_named() -> None:
    assert label_problems({"door": 5, "lights": 2}) == []
    problems = label_problems({"Lights On": 4, "door": 5, "lights  on ": 3, "thermostat": 6, "thermostst": 1, "unused": 0})
    assert problems == [
        "labels with fewer than 2 training examples: 'thermostst' (1), 'unused' (0)",
        "labels equal after case and whitespace folding: 'Lights On', 'lights  on '",
    ]


def _home(folder: Path, typo: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train = ["text,label"] + [f"turn on lamp {i},lights" for i in range(4)] + [f"lock door {i},door" for i in range(4)] + [f"set heat to 2{i},heat" for i in range(3)]
    if typo:
        train.append("make it warmer,haet")
    (folder / "train.csv").write_text("\n".join(train) + "\n", encoding="utf-8")
    (folder / "dev.csv").write_text("text,label\nlamp on,lights\nlock it,door\nheat up,heat\n", encoding="utf-8")
    return folder


def train(folder: Path, checkpoint: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["train", "--task", "home", "--data", str(folder), "--pretrained", str(checkpoint), "--frozen", "2", "--epochs", "1", "--max-length", "16", "--out", str(out), *extra]
    return subprocess.run([sys.executable, "-m", "mtbert", *args], cwd=TRAINING, capture_output=True, text=True, timeout=300)


def test_the_command_line_prints_the_counts_and_refuses_a_one_example_label(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = _home(tmp_path / "home", typo=True)
    refused = train(data, tiny_checkpoint, tmp_path / "run")
    assert refused.returncode == 2
    assert "examples per label (train/dev): door 4/1, haet 1/0, heat 3/1, lights 4/1" in refused.stderr
    assert f"labels with fewer than 2 training examples: 'haet' (1 at {data / 'train.csv'}:13)" in refused.stderr
    assert "--allow-rare-labels" in refused.stderr and not (tmp_path / "run").exists()
    allowed = train(data, tiny_checkpoint, tmp_path / "run", "--allow-rare-labels")
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "run" / "head.onnx").is_file()


def test_a_dev_label_that_train_lacks_stays_an_error(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = _home(tmp_path / "home", typo=False)
    (data / "dev.csv").write_text("text,label\nlamp on,lights\nplay jazz,music\n", encoding="utf-8")
    result = train(data, tiny_checkpoint, tmp_path / "run", "--allow-rare-labels")
    assert result.returncode == 2
    assert f"{data / 'dev.csv'}:3: field 'label' is 'music', not a label of task home" in result.stderr


def test_dev_scores_per_label() -> None:
    spec = TaskSpec("home", "single", "classification", labels=["a", "b"], label_names=["a", "b"])
    dev = EncodedSet([], torch.tensor([0, 0, 1, 1]))
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 4.0]])
    per_label, overall = dev_scores(spec, logits, dev)
    top = torch.softmax(torch.tensor([2.0, 0.0]), -1)[0].item()
    assert [(s.label, s.examples, s.accuracy) for s in per_label] == [("a", 2, 50.0), ("b", 2, 50.0)]
    assert abs(per_label[0].confidence - top) < 1e-6
    assert (overall.examples, overall.accuracy) == (4, 50.0)
    assert "| **all** | 4 | 50.0 |" in dev_table(per_label, overall)
