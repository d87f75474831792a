"""Token tagging (BIO slots): a tag per word, from each word's first piece; token cross-entropy or
a CRF's sentence likelihood, scored by span F1 (conlleval), decoded by argmax or CRF Viterbi.

A tagging example's labels are one row per example, as wide as its longest encoding: the word's
tag index on its first piece and IGNORE (-100) on every other piece, [CLS], [SEP] and padding,
so cross-entropy, distillation and the CRF all read exactly one position per word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .. import metrics
from ..encoded import EncodedSet
from ..modeling import CRF
from ..records import DatasetError, Example, listed, string_list
from .base import OutputKind

if TYPE_CHECKING:
    from ..data import TaskSpec
    from ..modeling import TaskHead
    from ..tokenization import WordPieceTokenizer

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


class Tagging(OutputKind):
    name = "tagging"
    sources = {"token tagging (BIO slots)": "single"}
    per_token = True
    supports_crf = True
    reads_csv = False

    def spec_fields(self, info: dict, at: str) -> dict:
        tags = string_list(info.get("tags"), f"{at}.tags", "the BIO tags, \"O\" included", 1)  # includes tags_unseen_in_train: dev may use them
        if "O" not in tags:
            raise DatasetError(f'{at}.tags has no "O" tag (the tag of words outside any entity)')
        return {"labels": tags, "label_names": tags}

    def line_format(self, input_kind: str) -> str:
        return '{"tokens": [str], "tags": [str]} (one BIO tag per token)' if input_kind == "single" else ""

    def read_example(self, at: str, row: dict, spec: TaskSpec, index_of: dict[str, int]) -> Example:
        """One `{"tokens": [...], "tags": [...]}` line: tags become indices into `spec.labels`."""
        words, tags = row.get("tokens"), row.get("tags")
        for field, value in (("tokens", words), ("tags", tags)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DatasetError(f"{at}: field {field!r} must be a list of strings; a line of task {spec.name} is {self.line_format(spec.input)}")
        assert isinstance(words, list) and isinstance(tags, list)
        if len(words) != len(tags) or not words:
            raise DatasetError(f"{at}: {len(words)} tokens but {len(tags)} tags")
        unknown = [t for t in tags if t not in index_of]
        if unknown:
            raise DatasetError(f"{at}: field 'tags' holds {unknown[0]!r}, not a tag of task {spec.name}; accepted: {listed(spec.labels)}")
        return Example(" ".join(words), None, [index_of[t] for t in tags], words)

    def primary_metric(self, task: str) -> str:
        return "span_f1"

    def encode(self, examples: list[Example], tokenizer: WordPieceTokenizer) -> EncodedSet:
        encoded = [tokenizer.encode_words(e.words if e.words is not None else e.text.split()) for e in examples]
        width = max((len(enc.input_ids) for enc, _ in encoded), default=2)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        for row, ((_, starts), example) in enumerate(zip(encoded, examples)):
            for position, tag in zip(starts, example.label):  # type: ignore[call-overload]
                if position >= 0:
                    labels[row, position] = tag
        word_tags = [list(e.label) for e in examples]  # type: ignore[call-overload]
        return EncodedSet([enc for enc, _ in encoded], labels, [starts for _, starts in encoded], word_tags)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, crf: CRF | None = None) -> torch.Tensor:
        return tagging_loss(logits, labels, crf)

    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        return soft_tagging_loss(logits, teacher_logits, labels, temperature)

    def evaluate(self, spec: TaskSpec, logits: torch.Tensor, data: EncodedSet, crf: CRF | None = None) -> dict[str, float]:
        """Scored per word, words cut by truncation included (they are predicted "O"), with CRF
        Viterbi decoding when the head has a CRF."""
        assert data.word_starts is not None and data.word_tags is not None
        outside = spec.labels.index("O")
        predicted = [[spec.labels[t] for t in decode_words(logits[i], starts, outside, crf)] for i, starts in enumerate(data.word_starts)]
        gold = [[spec.labels[t] for t in tags] for tags in data.word_tags]
        return metrics.compute_tagging(predicted, gold)

    def manifest_output(self, spec: TaskSpec, head: TaskHead) -> dict:
        return {"kind": self.name, "tags": list(spec.labels), "crf": _crf_matrices(head.crf)}

    def manifest_width(self, output: dict) -> int:
        return len(output["tags"])

    def manifest_problems(self, output: dict) -> list[str]:
        """A tagging output needs an "O" tag, and CRF matrices shaped by the tag count."""
        tags = output.get("tags") or []
        problems = [] if "O" in tags else ["tags has no \"O\" tag"]
        crf = output.get("crf")
        if crf is not None:
            n = len(tags)
            if len(crf.get("transitions", [])) != n or any(len(row) != n for row in crf["transitions"]):
                problems.append(f"crf.transitions is not {n} x {n}")
            problems += [f"crf.{key} does not have {n} values" for key in ("start", "end") if len(crf.get(key, [])) != n]
        return problems

    def manifest_crf(self, output: dict) -> CRF | None:
        crf = output.get("crf")
        if not crf:
            return None
        module = CRF(len(output["tags"]))
        with torch.no_grad():
            module.transitions.copy_(torch.tensor(crf["transitions"]))
            module.start.copy_(torch.tensor(crf["start"]))
            module.end.copy_(torch.tensor(crf["end"]))
        return module

    def parity_extras(self, tokenizer: WordPieceTokenizer, text: str, logits: torch.Tensor, spec: TaskSpec, head: TaskHead) -> dict[str, object]:
        """The tag of each whitespace-split word of `text`, decoded as the service must: first-piece
        logits of the words, CRF Viterbi (or argmax), "O" for words truncated away."""
        _, starts = tokenizer.served_word_starts(text)
        return {"tags": [spec.labels[i] for i in decode_words(logits, starts, spec.labels.index("O"), head.crf)]}


def _crf_matrices(crf: CRF | None) -> dict | None:
    """The CRF's scores for the service's Viterbi decoder (transitions[from][to]), as float32
    values written exactly (shortest repr), so C# decodes with the very numbers PyTorch used."""
    if crf is None:
        return None

    def values(t: torch.Tensor) -> list:
        return t.detach().to(torch.float32).tolist()

    return {"transitions": values(crf.transitions), "start": values(crf.start), "end": values(crf.end)}


KIND = Tagging()
