"""Regression: one number per sentence pair, from [CLS]; mean squared error, scored by Pearson and
Spearman correlation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..records import DatasetError
from .base import SentenceKind

if TYPE_CHECKING:
    from ..data import TaskSpec
    from ..modeling import CRF, TaskHead

LINE_FORMATS = {"pair": '{"text": str, "text_pair": str, "label": float}'}


class Regression(SentenceKind):
    name = "regression"
    sources = {"regression": "pair"}
    label_dtype = torch.float32

    def spec_fields(self, info: dict, at: str) -> dict:
        low, high = info.get("label_range", [0.0, 5.0])
        return {"value_range": (float(low), float(high))}

    def line_format(self, input_kind: str) -> str:
        return LINE_FORMATS.get(input_kind, "")

    def label(self, at: str, raw: object, spec: TaskSpec, index_of: dict[str, int]) -> float:
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{at}: field 'label' is {raw!r}, not a number; a line of task {spec.name} is {self.line_format(spec.input)}") from error

    def num_outputs(self, spec: TaskSpec) -> int:
        return 1

    def primary_metric(self, task: str) -> str:
        return "pearson_spearman"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, crf: CRF | None = None) -> torch.Tensor:
        return F.mse_loss(logits.squeeze(-1), labels)

    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        return F.mse_loss(logits, teacher_logits)

    def predictions(self, logits: torch.Tensor) -> np.ndarray:
        return logits.squeeze(-1).numpy()

    def manifest_output(self, spec: TaskSpec, head: TaskHead) -> dict:
        assert spec.value_range is not None
        return {"kind": self.name, "range": list(spec.value_range)}

    def manifest_width(self, output: dict) -> int:
        return 1


KIND = Regression()
