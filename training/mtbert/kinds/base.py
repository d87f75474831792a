"""The contract every head kind fulfils (`OutputKind`), and what the sentence-level kinds share
(`SentenceKind`: one output row per input, read from [CLS])."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import metrics
from ..encoded import EncodedSet
from ..records import DatasetError, Example

if TYPE_CHECKING:
    from ..data import TaskSpec
    from ..modeling import CRF, TaskHead
    from ..tokenization import WordPieceTokenizer


class OutputKind(ABC):
    """Everything that differs between head kinds: how tasks.json and dataset lines describe a task
    of the kind, its labels as tensors, its training and distillation losses, its dev metrics
    (decoding included), the shape of its ONNX output and its manifest `output` entry. The rest of
    the toolkit asks the task's kind (`TaskSpec.output_kind`, `TaskHead.kind`), never its name.
    One module of this package per kind, holding `KIND`; the package registers it (`kind_named`)."""

    name: str  # TaskSpec.kind, run.json's task.kind and the manifest's output.kind
    sources: dict[str, str]  # tasks.json kinds read as this kind -> their input ("single" | "pair")
    per_token: bool = False  # logits [batch, seq, n] from every token, not [batch, n] from [CLS]
    supports_crf: bool = False  # a CRF layer may decode its outputs
    supports_fallback: bool = False  # an out-of-scope fallback may answer for it (`mtbert fallback`)
    reads_csv: bool = True  # its dataset lines may come from a CSV file (else JSONL only)

    def __deepcopy__(self, memo: dict) -> "OutputKind":
        return self  # stateless: a copied head keeps the registered kind

    # -------------------------------------------------------------------- tasks.json and dataset lines
    @abstractmethod
    def spec_fields(self, info: dict, at: str) -> dict:
        """TaskSpec fields (labels, label_names, value_range) from the task's tasks.json entry `info`; `at` names it in errors."""

    @abstractmethod
    def line_format(self, input_kind: str) -> str:
        """One dataset line of such a task, for error messages."""

    @abstractmethod
    def read_example(self, at: str, row: dict, spec: TaskSpec, index_of: dict[str, int]) -> Example:
        """One dataset line (`row`, at file:line `at`) as an Example; `index_of`: label -> output index."""

    def num_outputs(self, spec: TaskSpec) -> int:
        return len(spec.labels)

    @abstractmethod
    def primary_metric(self, task: str) -> str:
        """The metric family (`metrics.compute`) a task of this kind is scored by."""

    # -------------------------------------------------------------------- training and scoring
    @abstractmethod
    def encode(self, examples: list[Example], tokenizer: WordPieceTokenizer) -> EncodedSet:
        """The examples tokenized, with their labels as the loss wants them."""

    @abstractmethod
    def loss(self, logits: torch.Tensor, labels: torch.Tensor, crf: CRF | None = None) -> torch.Tensor:
        """The hard-label training loss of a batch."""

    @abstractmethod
    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        """Distillation: how far a student's outputs are from its teacher's on a batch."""

    @abstractmethod
    def evaluate(self, spec: TaskSpec, logits: torch.Tensor, data: EncodedSet, crf: CRF | None = None) -> dict[str, float]:
        """Dev metrics of `logits` (one row per example of `data`); `score` is the number heads are compared by."""

    # -------------------------------------------------------------------- bundle
    @abstractmethod
    def manifest_output(self, spec: TaskSpec, head: TaskHead) -> dict:
        """The manifest's `output` entry of a head (docs/bundle-format.md)."""

    @abstractmethod
    def manifest_width(self, output: dict) -> int:
        """The number of outputs a manifest `output` entry describes."""

    def manifest_problems(self, output: dict) -> list[str]:
        """What is wrong with a manifest `output` entry of this kind (`bundle verify`)."""
        return []

    def manifest_crf(self, output: dict) -> CRF | None:
        """The CRF a manifest `output` entry decodes with, if any."""
        return None

    def parity_extras(self, tokenizer: WordPieceTokenizer, text: str, logits: torch.Tensor, spec: TaskSpec, head: TaskHead) -> dict[str, object]:
        """What parity.json records of a head's answer to `text` besides its logits (key -> value for this task)."""
        return {}


class SentenceKind(OutputKind):
    """A kind with one output row per input (from [CLS]): lines are `text` (+ `text_pair`) and `label`."""

    label_dtype: torch.dtype

    def read_example(self, at: str, row: dict, spec: TaskSpec, index_of: dict[str, int]) -> Example:
        expected = self.line_format(spec.input)
        text, pair, raw = row.get("text"), row.get("text_pair"), row.get("label")
        pair = None if pair == "" else pair  # a CSV's empty text_pair cell
        for field, value in (("text", text), ("label", raw)):
            if value is None or value == "":
                raise DatasetError(f"{at}: field {field!r} is missing or empty; a line of task {spec.name} is {expected}")
        if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
            raise DatasetError(f"{at}: fields 'text' and 'text_pair' must be strings; a line of task {spec.name} is {expected}")
        if (pair is None) != (spec.input == "single"):
            raise DatasetError(f"{at}: task {spec.name} is '{spec.input}' input, the line {'lacks' if pair is None else 'has'} text_pair")
        return Example(text, pair, self.label(at, raw, spec, index_of))

    @abstractmethod
    def label(self, at: str, raw: object, spec: TaskSpec, index_of: dict[str, int]) -> int | float:
        """A line's `label` field as the training target."""

    def encode(self, examples: list[Example], tokenizer: WordPieceTokenizer) -> EncodedSet:
        encodings = [tokenizer.encode(e.text, e.text_pair) for e in examples]
        return EncodedSet(encodings, torch.tensor([e.label for e in examples], dtype=self.label_dtype))

    @abstractmethod
    def predictions(self, logits: torch.Tensor) -> np.ndarray:
        """The answer of each row of `logits`, as the metrics compare it with the labels."""

    def evaluate(self, spec: TaskSpec, logits: torch.Tensor, data: EncodedSet, crf: CRF | None = None) -> dict[str, float]:
        return metrics.compute(spec.primary_metric, self.predictions(logits), data.labels.numpy())
