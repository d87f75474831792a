"""Classification: one label per input, from [CLS]; cross-entropy, softmax distillation, an
out-of-scope fallback may answer for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..records import DatasetError, listed, string_list
from .base import SentenceKind

if TYPE_CHECKING:
    from ..data import TaskSpec
    from ..modeling import CRF, TaskHead

# The GLUE metric reported for each task (accuracy for everything not listed).
PRIMARY_METRIC = {"cola": "mcc", "mrpc": "f1_acc", "qqp": "f1_acc"}
LINE_FORMATS = {"single": '{"text": str, "label": str}', "pair": '{"text": str, "text_pair": str, "label": str}'}


class Classification(SentenceKind):
    name = "classification"
    sources = {"single-sentence classification": "single", "sentence-pair classification": "pair"}
    supports_fallback = True
    label_dtype = torch.long

    def spec_fields(self, info: dict, at: str) -> dict:
        labels = string_list(info.get("labels"), f"{at}.labels", "the label strings as the data writes them", 2)
        names_by_label = info.get("label_names") or {}
        return {"labels": labels, "label_names": [str(names_by_label.get(label, label)) for label in labels]}

    def line_format(self, input_kind: str) -> str:
        return LINE_FORMATS.get(input_kind, "")

    def label(self, at: str, raw: object, spec: TaskSpec, index_of: dict[str, int]) -> int:
        if str(raw) not in index_of:
            raise DatasetError(f"{at}: field 'label' is {raw!r}, not a label of task {spec.name}; accepted: {listed(spec.labels)}")
        return index_of[str(raw)]

    def primary_metric(self, task: str) -> str:
        return PRIMARY_METRIC.get(task, "accuracy")

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, crf: CRF | None = None) -> torch.Tensor:
        return F.cross_entropy(logits, labels)

    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        t = temperature
        return F.kl_div(F.log_softmax(logits / t, -1), F.softmax(teacher_logits / t, -1), reduction="batchmean") * t * t

    def predictions(self, logits: torch.Tensor) -> np.ndarray:
        return logits.argmax(-1).numpy()

    def manifest_output(self, spec: TaskSpec, head: TaskHead) -> dict:
        return {"kind": self.name, "labels": spec.label_names or spec.labels}

    def manifest_width(self, output: dict) -> int:
        return len(output["labels"])


KIND = Classification()
