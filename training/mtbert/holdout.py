"""The calibration part of a training split: examples a head never trains on, so that the head's own
features can be calibrated for the out-of-domain measure (`ood`, `calibrate`).

Which examples are held out depends on their text alone (a hash, not a seeded shuffle): training and a
later `bundle calibrate` agree without sharing any state, whatever sample (`--max-train`) or order
either reads, and copies of one text fall on the same side (no duplicate leaks from training into
calibration)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .data import TaskSpec, read_examples, sample
from .records import Example

MAX_SHARE = 0.5


def held_out(example: Example, share: float) -> bool:
    """Whether `example` belongs to the calibration part when `share` of a split is held out."""
    text = example.text if example.text_pair is None else f"{example.text}\x1f{example.text_pair}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split(examples: list[Example], share: float) -> tuple[list[Example], list[Example]]:
    """(training part, calibration part) of `examples`, source order kept."""
    if not 0 <= share <= MAX_SHARE:
        raise ValueError(f"the calibration share must lie in [0, {MAX_SHARE}], not {share}")
    held = [held_out(e, share) for e in examples]
    return [e for e, h in zip(examples, held) if not h], [e for e, h in zip(examples, held) if h]


def training_split(path: Path, spec: TaskSpec, share: float, limit: int | None = None, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """A training split file read as (what a head trains on: a seeded sample of at most `limit` of the
    kept part, the held-out calibration part). With `share` 0, exactly `read_examples`'s sample and no part."""
    if share <= 0:
        return read_examples(path, spec, limit, seed), []
    kept, held = split(read_examples(path, spec), share)
    return sample(kept, limit, seed), held
