"""Task datasets in the normalised JSONL layout of `shared/data` (see its README)."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
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


ACCEPTED_KINDS = ", ".join(f"'{k}'" for k in KIND_BY_SOURCE)
# One line of each kind of dataset (JSONL; a CSV has the same fields as columns, tagging excepted).
LINE_FORMATS = {
    ("single", "classification"): '{"text": str, "label": str}',
    ("pair", "classification"): '{"text": str, "text_pair": str, "label": str}',
    ("pair", "regression"): '{"text": str, "text_pair": str, "label": float}',
    ("single", "tagging"): '{"tokens": [str], "tags": [str]} (one BIO tag per token)',
}
SPLIT_SUFFIXES = (".jsonl", ".csv")


def load_task_spec(data_root: Path, task: str, description: str | None = None) -> TaskSpec:
    """The task's spec from `data_root/tasks.json`, or, without one, inferred from the single-task
    folder layout (`data_root/train.jsonl|csv`, classification only). `description` overrides."""
    manifest_path = data_root / "tasks.json"
    if not manifest_path.is_file():
        if _split_candidates(data_root, None, "train"):
            return _single_task_spec(data_root, task, description)
        raise DatasetError(
            f"{data_root}: neither tasks.json (a folder of tasks: tasks.json + <task>/train.jsonl, dev.jsonl) nor train.jsonl / train.csv "
            "(a single classification task: train + dev beside each other) was found"
        )
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{manifest_path}: not valid JSON ({error})") from error
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    if not isinstance(tasks, dict):
        found = ", ".join(sorted(raw)) if isinstance(raw, dict) else type(raw).__name__
        raise DatasetError(f'{manifest_path}: expected {{"tasks": {{"<task name>": {{"kind": ..., "labels": [...]}}}}}}; the top level has no "tasks" object (found: {found})')
    if task not in tasks:
        raise DatasetError(f"{manifest_path}: unknown task {task!r}; known: {', '.join(sorted(tasks))}")
    info = tasks[task]
    at = f"{manifest_path}: tasks.{task}"
    if not isinstance(info, dict) or info.get("kind") not in KIND_BY_SOURCE:
        found = info.get("kind") if isinstance(info, dict) else info
        raise DatasetError(f"{at}.kind is {found!r}; accepted kinds: {ACCEPTED_KINDS}")
    input_kind, kind = KIND_BY_SOURCE[info["kind"]]
    text = description or info.get("description") or _describe(task, info)
    if kind == "regression":
        low, high = info.get("label_range", [0.0, 5.0])
        return TaskSpec(task, input_kind, kind, value_range=(float(low), float(high)), description=text)
    if kind == "tagging":
        tags = _strings(info.get("tags"), f"{at}.tags", "the BIO tags, \"O\" included", 1)  # includes tags_unseen_in_train: dev may use them
        if "O" not in tags:
            raise DatasetError(f'{at}.tags has no "O" tag (the tag of words outside any entity)')
        return TaskSpec(task, input_kind, kind, labels=tags, label_names=tags, description=text)
    labels = _strings(info.get("labels"), f"{at}.labels", "the label strings as the data writes them", 2)
    names_by_label = info.get("label_names") or {}
    names = [str(names_by_label.get(label, label)) for label in labels]
    return TaskSpec(task, input_kind, kind, labels=labels, label_names=names, description=text)


def _strings(value: object, field: str, what: str, minimum: int) -> list[str]:
    if not isinstance(value, list) or len(value) < minimum or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{field}: expected a list of at least {minimum} strings ({what}), found {value!r}"[:300])
    if len(set(value)) != len(value):
        raise DatasetError(f"{field}: entries must be unique")
    return list(value)


def _split_candidates(data_root: Path, task: str | None, split: str) -> list[Path]:
    folder = data_root if task is None else data_root / task
    return [folder / f"{split}{suffix}" for suffix in SPLIT_SUFFIXES if (folder / f"{split}{suffix}").is_file()]


def split_file(data_root: Path, task: str, split: str) -> Path:
    """The file of a split: `<task>/<split>.jsonl` (or .csv) under a tasks.json folder, `<split>.jsonl`
    (or .csv) in a single-task folder. A missing file is returned as the .jsonl path (read_examples
    then says it is not found)."""
    single = not (data_root / "tasks.json").is_file()
    found = _split_candidates(data_root, None if single else task, split)
    if len(found) > 1:
        raise DatasetError(f"{found[0]} and {found[1]}: both exist; keep one")
    return found[0] if found else (data_root if single else data_root / task) / f"{split}.jsonl"


def _single_task_spec(data_root: Path, task: str, description: str | None) -> TaskSpec:
    """A classification task from a folder holding train and dev files alone: the input kind from
    whether lines have text_pair, the labels sorted from the training split."""
    train = split_file(data_root, task, "train")
    rows = list(_rows(train))
    if not rows:
        raise DatasetError(f"{train}: no examples")
    line_no, first = rows[0]
    if "tokens" in first or "tags" in first:
        raise DatasetError(f"{train}:{line_no}: a tagging dataset needs a tasks.json (kind 'token tagging (BIO slots)' and its tags); see training/README.md")
    input_kind = "pair" if first.get("text_pair") not in (None, "") else "single"
    labels: set[str] = set()
    for line_no, row in rows:
        if "label" not in row or row["label"] in (None, ""):
            raise DatasetError(f"{train}:{line_no}: field 'label' is missing; a line is {LINE_FORMATS[(input_kind, 'classification')]}")
        labels.add(str(row["label"]))
    if len(labels) < 2:
        raise DatasetError(f"{train}: a classification task needs at least 2 labels, found {sorted(labels)}")
    ordered = sorted(labels)
    text = description or f"{task}: {input_kind}-input classification ({len(ordered)} labels)"
    return TaskSpec(task, input_kind, "classification", labels=ordered, label_names=ordered, description=text)


def _rows(path: Path) -> "Iterator[tuple[int, dict]]":
    """(line number, fields) of each non-empty line of a JSONL file, or of each row of a CSV file
    with a header (line numbers count the header as line 1)."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    with open(path, encoding="utf-8", newline="" if path.suffix == ".csv" else None) as stream:
        if path.suffix == ".csv":
            reader = csv.DictReader(stream)
            if not reader.fieldnames or "text" not in reader.fieldnames:
                raise DatasetError(f"{path}:1: the header must name the columns text, label (and text_pair for pairs); found {reader.fieldnames}")
            for row in reader:
                if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    yield reader.line_num, {k: v for k, v in row.items() if k is not None}
            return
        for line_no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{line_no}: not valid JSON ({error})") from error
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{line_no}: expected a JSON object per line, found {type(row).__name__}")
            yield line_no, row


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
    """Reads a split (JSONL, or CSV with a header); with `limit`, a seeded random sample of that many
    examples (source order kept). A bad line is a DatasetError naming the file, line and field."""
    index_of = {label: i for i, label in enumerate(spec.labels)}
    expected = LINE_FORMATS.get((spec.input, spec.kind), "")
    if spec.kind == "tagging" and path.suffix == ".csv":
        raise DatasetError(f"{path}: a tagging task reads JSONL lines {expected}, not CSV")
    examples: list[Example] = []
    for line_no, row in _rows(path):
        at = f"{path}:{line_no}"
        if spec.kind == "tagging":
            examples.append(_tagging_example(at, row, spec, index_of, expected))
            continue
        text, pair, raw = row.get("text"), row.get("text_pair"), row.get("label")
        pair = None if pair == "" else pair  # a CSV's empty text_pair cell
        for field, value in (("text", text), ("label", raw)):
            if value is None or value == "":
                raise DatasetError(f"{at}: field {field!r} is missing or empty; a line of task {spec.name} is {expected}")
        if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
            raise DatasetError(f"{at}: fields 'text' and 'text_pair' must be strings; a line of task {spec.name} is {expected}")
        if (pair is None) != (spec.input == "single"):
            raise DatasetError(f"{at}: task {spec.name} is '{spec.input}' input, the line {'lacks' if pair is None else 'has'} text_pair")
        if spec.kind == "regression":
            try:
                label: int | float = float(raw)
            except (TypeError, ValueError) as error:
                raise DatasetError(f"{at}: field 'label' is {raw!r}, not a number; a line of task {spec.name} is {expected}") from error
        else:
            if str(raw) not in index_of:
                raise DatasetError(f"{at}: field 'label' is {raw!r}, not a label of task {spec.name}; accepted: {_listed(spec.labels)}")
            label = index_of[str(raw)]
        examples.append(Example(text, pair, label))
    if limit is not None and len(examples) > limit:
        keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
        examples = [examples[i] for i in keep]
    return examples


def _listed(values: list[str], most: int = 20) -> str:
    return ", ".join(values[:most]) + (f" ... ({len(values)} in all)" if len(values) > most else "")


def _tagging_example(at: str, row: dict, spec: TaskSpec, index_of: dict[str, int], expected: str) -> Example:
    """One `{"tokens": [...], "tags": [...]}` line: tags become indices into `spec.labels`."""
    words, tags = row.get("tokens"), row.get("tags")
    for field, value in (("tokens", words), ("tags", tags)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DatasetError(f"{at}: field {field!r} must be a list of strings; a line of task {spec.name} is {expected}")
    assert isinstance(words, list) and isinstance(tags, list)
    if len(words) != len(tags) or not words:
        raise DatasetError(f"{at}: {len(words)} tokens but {len(tags)} tags")
    unknown = [t for t in tags if t not in index_of]
    if unknown:
        raise DatasetError(f"{at}: field 'tags' holds {unknown[0]!r}, not a tag of task {spec.name}; accepted: {_listed(spec.labels)}")
    return Example(" ".join(words), None, [index_of[t] for t in tags], words)
