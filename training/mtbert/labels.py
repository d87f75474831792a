"""A classification task's labels before training (how many examples each has, labels too rare to
learn or that differ only in case or spacing, usually typos) and its chosen head's answers on dev
per label (accuracy and mean confidence)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import Checkpoint
from .data import TaskSpec
from .dataset_files import Problems, file_rows
from .encoded import EncodedSet
from .pipeline import served_dev_logits
from .records import DatasetError

MIN_EXAMPLES = 2  # training examples a label needs (unless --allow-rare-labels)


def label_counts(spec: TaskSpec, data: EncodedSet) -> dict[str, int]:
    """Examples per label of a classification split, in the task's label order (0 for a label it lacks)."""
    counts = Counter(int(i) for i in data.labels.tolist())
    return {label: counts.get(i, 0) for i, label in enumerate(spec.labels)}


def counts_line(train: dict[str, int], dev: dict[str, int]) -> str:
    """One line a user can check the data with: each label's training and dev examples."""
    return "examples per label (train/dev): " + ", ".join(f"{label} {n}/{dev.get(label, 0)}" for label, n in train.items())


def folded(label: str) -> str:
    """A label with case and whitespace folded: 'Lights On ' and 'lights  on' fold alike."""
    return " ".join(label.casefold().split())


def label_problems(train: dict[str, int], train_file: Path | None = None) -> list[str]:
    """Labels with fewer than MIN_EXAMPLES training examples (with the lines they are on, when
    `train_file` is given) and groups of labels equal after folding (`folded`)."""
    problems = []
    rare = {label: n for label, n in train.items() if n < MIN_EXAMPLES}
    if rare:
        lines = _lines_of(train_file, set(rare)) if train_file is not None else {}
        described = [f"{label!r} ({n}{_at_lines(train_file, lines.get(label, []))})" for label, n in rare.items()]
        problems.append(f"labels with fewer than {MIN_EXAMPLES} training examples: {', '.join(described)}")
    groups: dict[str, list[str]] = {}
    for label in train:
        groups.setdefault(folded(label), []).append(label)
    for same in (g for g in groups.values() if len(g) > 1):
        problems.append(f"labels equal after case and whitespace folding: {', '.join(map(repr, same))}")
    return problems


def check_labels(spec: TaskSpec, train: dict[str, int], train_file: Path | None, allow_rare: bool) -> None:
    """Refuses the labels `label_problems` finds (a typo would otherwise become a class of its own), unless `allow_rare`."""
    problems = label_problems(train, train_file)
    if problems and not allow_rare:
        raise DatasetError(f"task {spec.name}: " + "; ".join(problems) + ". Fix the data, or pass --allow-rare-labels to train on these labels as they are")


def _lines_of(path: Path, labels: set[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for line_no, row in file_rows(path, Problems(path)):
        if str(row.get("label")) in labels:
            found.setdefault(str(row["label"]), []).append(line_no)
    return found


def _at_lines(path: Path | None, lines: list[int]) -> str:
    return f" at {', '.join(f'{path}:{n}' for n in lines)}" if lines else ""


# ---------------------------------------------------------------------------- dev answers per label
@dataclass(frozen=True)
class LabelScores:
    label: str
    examples: int
    accuracy: float  # % of its dev examples answered with it
    confidence: float  # mean top softmax score on its dev examples


def dev_scores(spec: TaskSpec, logits: torch.Tensor, dev: EncodedSet) -> tuple[list[LabelScores], LabelScores]:
    """Per label and over all of dev: accuracy and mean confidence (the top softmax score, what
    the service answers with) of a head's dev outputs."""
    probabilities = torch.softmax(logits.float(), -1)
    top, predicted = probabilities.max(-1)
    gold = dev.labels
    correct = (predicted == gold).float()

    def scores(name: str, keep: torch.Tensor) -> LabelScores:
        n = int(keep.sum())
        return LabelScores(name, n, 100 * float(correct[keep].mean()) if n else 0.0, float(top[keep].mean()) if n else 0.0)

    per_label = [scores(label, gold == i) for i, label in enumerate(spec.label_names or spec.labels)]
    return per_label, scores("all", torch.ones_like(gold, dtype=torch.bool))


def dev_table(per_label: list[LabelScores], overall: LabelScores) -> str:
    """A markdown table of `dev_scores`."""
    lines = ["| label | dev examples | accuracy | mean confidence |", "| --- | --- | --- | --- |"]
    for s in [*per_label, overall]:
        name = f"**{s.label}**" if s is overall else s.label
        lines.append(f"| {name} | {s.examples} | {s.accuracy:.1f} | {s.confidence:.3f} |")
    return "\n".join(lines)


def served_dev_table(checkpoint: Checkpoint, data_root: Path, run: Path, max_length: int = 128) -> str:
    """`dev_table` of a finished head as a bundle serves it (`pipeline.served_dev_logits`)."""
    info, _, dev, logits = served_dev_logits(checkpoint, data_root, run, max_length)
    return dev_table(*dev_scores(info.spec, logits, dev))
