"""Task datasets in the normalised JSONL layout of `shared/data` (see its README)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from .dataset_files import Problems, file_rows
from .kinds import OutputKind, kind_named, source_kinds
from .kinds.classification import KIND as CLASSIFICATION
from .records import DatasetError, Example  # here too: the dataset reader's error and result

# tasks.json's kinds -> (input, head kind name).
KIND_BY_SOURCE = {source: (input_kind, kind.name) for source, (input_kind, kind) in source_kinds().items()}


@dataclass
class TaskSpec:
    """What the toolkit needs to know about a task; read from `tasks.json` or given on the CLI."""

    name: str
    input: str  # "single" | "pair"
    kind: str  # the head kind's name (`kinds`): "classification" | "regression" | "tagging"
    labels: list[str] = field(default_factory=list)  # source label strings (tagging: BIO tags), in output order
    label_names: list[str] = field(default_factory=list)  # human-readable names served by the API
    value_range: tuple[float, float] | None = None
    description: str = ""

    @property
    def output_kind(self) -> OutputKind:
        return kind_named(self.kind)

    @property
    def num_outputs(self) -> int:
        return self.output_kind.num_outputs(self)

    @property
    def primary_metric(self) -> str:
        return self.output_kind.primary_metric(self.name)


ACCEPTED_KINDS = ", ".join(f"'{k}'" for k in KIND_BY_SOURCE)
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
        raw = json.loads(manifest_path.read_text(encoding="utf-8-sig"))  # a byte-order mark accepted
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
    input_kind, kind = source_kinds()[info["kind"]]
    text = description or info.get("description") or _describe(task, info)
    return TaskSpec(task, input_kind, kind.name, description=text, **kind.spec_fields(info, at))


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
    problems = Problems(train)
    rows = list(file_rows(train, problems))
    problems.raise_if_any()
    if not rows:
        raise DatasetError(f"{train}: no examples")
    line_no, first = rows[0]
    if "tokens" in first or "tags" in first:
        raise DatasetError(f"{train}:{line_no}: a tagging dataset needs a tasks.json (kind 'token tagging (BIO slots)' and its tags); see training/README.md")
    input_kind = "pair" if first.get("text_pair") not in (None, "") else "single"
    labels: set[str] = set()
    for line_no, row in rows:
        if "label" not in row or row["label"] in (None, ""):
            problems.add(f"{train}:{line_no}: field 'label' is missing or empty; a line is {CLASSIFICATION.line_format(input_kind)}")
        else:
            labels.add(str(row["label"]))
    problems.raise_if_any()
    if len(labels) < 2:
        raise DatasetError(f"{train}: a classification task needs at least 2 labels, found {sorted(labels)}")
    ordered = sorted(labels)
    text = description or f"{task}: {input_kind}-input classification ({len(ordered)} labels)"
    return TaskSpec(task, input_kind, CLASSIFICATION.name, labels=ordered, label_names=ordered, description=text)


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
    examples (source order kept). Bad lines are one DatasetError naming each one's file, line and
    field (`dataset_files`: up to 20 of them listed)."""
    index_of = {label: i for i, label in enumerate(spec.labels)}
    kind = spec.output_kind
    if not kind.reads_csv and path.suffix == ".csv":
        raise DatasetError(f"{path}: a {kind.name} task reads JSONL lines {kind.line_format(spec.input)}, not CSV")
    problems = Problems(path)
    examples = []
    for line_no, row in file_rows(path, problems):
        try:
            examples.append(kind.read_example(f"{path}:{line_no}", row, spec, index_of))
        except DatasetError as error:
            problems.add(str(error))
    problems.raise_if_any()
    return sample(examples, limit, seed)


def sample(examples: list[Example], limit: int | None, seed: int = 0) -> list[Example]:
    """A seeded random sample of at most `limit` of `examples` (source order kept); all of them when `limit` is None."""
    if limit is None or len(examples) <= limit:
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]
