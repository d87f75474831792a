"""Token tagging (BIO slots): per-token labels on each word's first piece, losses and decoding.

A tagging example's labels are one row per example, as wide as its longest encoding: the word's
tag index on its first piece and IGNORE (-100) on every other piece, [CLS], [SEP] and padding,
so cross-entropy, distillation and the CRF all read exactly one position per word.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .modeling import CRF

IGNORE = -100  # label of positions that are not a word's first piece (F.cross_entropy's default)


def word_rows(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packs the first-piece positions of each row to the left, for the CRF: emissions
    [batch, words, tags], tags [batch, words] and a left-aligned mask [batch, words]."""
    keep = labels != IGNORE
    # A stable sort of "is not a word" moves the word positions first, in their order.
    order = torch.sort((~keep).long(), dim=1, stable=True).indices
    width = max(1, int(keep.sum(1).max()))
    order = order[:, :width]
    emissions = logits.gather(1, order.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    return emissions, labels.gather(1, order).clamp(min=0), keep.gather(1, order)


def tagging_loss(logits: torch.Tensor, labels: torch.Tensor, crf: CRF | None = None) -> torch.Tensor:
    """Hard loss on first pieces: token cross-entropy, or the CRF's sentence NLL."""
    labels = labels[:, : logits.shape[1]]  # a batch is no wider than its longest example
    if not bool((labels != IGNORE).any()):
        return logits.sum() * 0.0
    if crf is not None:
        return crf.nll(*word_rows(logits, labels))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)


def soft_tagging_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Knowledge distillation per token, on first-piece positions only (the others carry no tag)."""
    keep = labels[:, : logits.shape[1]] != IGNORE
    if not bool(keep.any()):
        return logits.sum() * 0.0
    t = temperature
    student = F.log_softmax(logits[keep] / t, -1)
    teacher = F.softmax(teacher_logits[keep] / t, -1)
    return F.kl_div(student, teacher, reduction="batchmean") * t * t


def decode_words(logits: torch.Tensor, starts: list[int], outside: int, crf: CRF | None = None) -> list[int]:
    """One tag index per word from one example's logits [seq, tags]: argmax (or CRF Viterbi over
    the words that have a first piece) at first pieces; `outside` ("O") for words without one."""
    placed = [p for p in starts if p >= 0]
    emissions = logits[placed] if placed else logits[:0]
    decoded = crf.decode(emissions) if crf is not None else [int(i) for i in emissions.argmax(-1)]
    it = iter(decoded)
    return [next(it) if p >= 0 else outside for p in starts]
