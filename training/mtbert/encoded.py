"""A split tokenized for training and scoring, with its labels as tensors (`EncodedSet`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .tokenization import Encoding, WordPieceTokenizer

if TYPE_CHECKING:
    from .data import TaskSpec
    from .records import Example


@dataclass
class EncodedSet:
    encodings: list[Encoding]
    # long [n] for classification, float [n] for regression; tagging: long [n, longest encoding]
    # with each word's tag on its first piece and IGNORE elsewhere.
    labels: torch.Tensor
    word_starts: list[list[int]] | None = None  # tagging: first-piece position per word (-1: truncated away)
    word_tags: list[list[int]] | None = None  # tagging: gold tag per word, truncated words included

    @staticmethod
    def build(examples: list[Example], tokenizer: WordPieceTokenizer, spec: TaskSpec) -> "EncodedSet":
        """Tokenized as the task's kind wants (`OutputKind.encode`)."""
        return spec.output_kind.encode(examples, tokenizer)

    def __len__(self) -> int:
        return len(self.encodings)

    def lengths(self) -> list[int]:
        return [len(e.input_ids) for e in self.encodings]
