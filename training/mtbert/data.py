"""Task datasets in the normalised JSONL layout of `shared/data` (see its README)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path


class DatasetError(ValueError):
    """A dataset that cannot be used, with the file and line."""


KIND_BY_SOURCE = {
    "single-sentence classification": ("single", "classification"),
    "sentence-pair classification": ("pair", "classification"),
    "regression": ("pair", "regression"),
    "token tagging (BIO slots)": ("single", "tagging"),
}

# The GLUE metric reported for each task (accuracy for everything not listed).
PRIMARY_METRIC = {"cola": "mcc", "mrpc": "f1_acc", "qqp": "f1_acc", "stsb": "pearson_spearman"}


@dataclass
class Example:
    text: str
    text_pair: str | None
    label: int | float | list[int]  # class index, a float target for regression, or one tag index per word
    words: list[str] | None = None  # tagging: the pre-split words that `label` tags (text = " ".join(words))


@dataclass
class TaskSpec:
    """What the toolkit needs to know about a task; read from `tasks.json` or given on the CLI."""

    name: str
    input: str  # "single" | "pair"
    kind: str  # "classification" | "regression" | "tagging"
    labels: list[str] = field(default_factory=list)  # source label strings (tagging: BIO tags), in output order
    label_names: list[str] = field(default_factory=list)  # human-readable names served by the API
    value_range: tuple[float, float] | None = None
    description: str = ""

    @property
    def num_outputs(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)

    @property
    def primary_metric(self) -> str:
        if self.kind == "regression":
            return "pearson_spearman"
        if self.kind == "tagging":
            return "span_f1"
        return PRIMARY_METRIC.get(self.name, "accuracy")


def load_task_spec(data_root: Path, task: str) -> TaskSpec:
    manifest_path = data_root / "tasks.json"
    if not manifest_path.is_file():
        raise DatasetError(f"{manifest_path}: not found (expected the tasks.json of shared/data)")
    tasks = json.loads(manifest_path.read_text(encoding="utf-8"))["tasks"]
    if task not in tasks:
        raise DatasetError(f"{manifest_path}: unknown task {task!r}; known: {', '.join(sorted(tasks))}")
    info = tasks[task]
    if info["kind"] not in KIND_BY_SOURCE:
        raise DatasetError(f"{manifest_path}: task {task!r} has kind {info['kind']!r}, which this command does not train")
    input_kind, kind = KIND_BY_SOURCE[info["kind"]]
    if kind == "regression":
        low, high = info.get("label_range", [0.0, 5.0])
        return TaskSpec(task, input_kind, kind, value_range=(float(low), float(high)), description=_describe(task, info))
    if kind == "tagging":
        tags = list(info["tags"])  # includes tags_unseen_in_train: dev may use them
        return TaskSpec(task, input_kind, kind, labels=tags, label_names=tags, description=_describe(task, info))
    labels = list(info["labels"])
    names_by_label = info.get("label_names") or {}
    names = [names_by_label.get(label, label) for label in labels]
    return TaskSpec(task, input_kind, kind, labels=labels, label_names=names, description=_describe(task, info))


DESCRIPTIONS = {
    "sst2": "Sentiment of a sentence (SST-2): negative or positive.",
    "cola": "Grammatical acceptability of an English sentence (CoLA).",
    "mrpc": "Whether two sentences are paraphrases (MRPC).",
    "stsb": "Semantic similarity of two sentences, 0 (unrelated) to 5 (same meaning) (STS-B).",
    "rte": "Whether the first text entails the second (RTE).",
    "wnli": "Whether the second sentence follows from the first, with a pronoun resolved (WNLI).",
    "clinc150": "Assistant intent among 150 intents in 10 domains, or out-of-scope `oos` (CLINC150).",
    "snips": "Voice-assistant intent, 7 classes (SNIPS).",
    "banking77": "Banking customer-service intent, 77 classes (Banking77).",
    "atis": "Air-travel information intent, 26 labels incl. multi-intent (ATIS).",
    "snips_slots": "Voice-assistant slots (SNIPS): BIO tag per word, 39 slot types.",
    "atis_slots": "Air-travel slots (ATIS): BIO tag per word, 83 slot types.",
}


def _describe(task: str, info: dict) -> str:
    return DESCRIPTIONS.get(task, f"{info['kind']} task {task}")


def read_examples(path: Path, spec: TaskSpec, limit: int | None = None, seed: int = 0) -> list[Example]:
    """Reads a split; with `limit`, a seeded random sample of that many examples (source order kept)."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    index_of = {label: i for i, label in enumerate(spec.labels)}
    examples: list[Example] = []
    with open(path, encoding="utf-8") as stream:
        for line_no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            if spec.kind == "tagging":
                examples.append(_tagging_example(path, line_no, line, spec, index_of))
                continue
            try:
                row = json.loads(line)
                text, pair, raw = row["text"], row.get("text_pair"), row["label"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise DatasetError(f"{path}:{line_no}: bad line ({error})") from error
            if (pair is None) != (spec.input == "single"):
                raise DatasetError(f"{path}:{line_no}: task {spec.name} is '{spec.input}' input, the line {'lacks' if pair is None else 'has'} text_pair")
            if spec.kind == "regression":
                label: int | float = float(raw)
            else:
                if str(raw) not in index_of:
                    raise DatasetError(f"{path}:{line_no}: unknown label {raw!r} for task {spec.name} (known: {', '.join(spec.labels[:10])}{'...' if len(spec.labels) > 10 else ''})")
                label = index_of[str(raw)]
            examples.append(Example(text, pair, label))
    if limit is not None and len(examples) > limit:
        keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
        examples = [examples[i] for i in keep]
    return examples


def _tagging_example(path: Path, line_no: int, line: str, spec: TaskSpec, index_of: dict[str, int]) -> Example:
    """One `{"tokens": [...], "tags": [...]}` line: tags become indices into `spec.labels`."""
    try:
        row = json.loads(line)
        words, tags = list(row["tokens"]), list(row["tags"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DatasetError(f"{path}:{line_no}: bad line ({error})") from error
    if len(words) != len(tags) or not words:
        raise DatasetError(f"{path}:{line_no}: {len(words)} tokens but {len(tags)} tags")
    unknown = [t for t in tags if t not in index_of]
    if unknown:
        raise DatasetError(f"{path}:{line_no}: unknown tag {unknown[0]!r} for task {spec.name}")
    return Example(" ".join(words), None, [index_of[t] for t in tags], words)
