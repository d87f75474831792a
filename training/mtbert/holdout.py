"""The calibration part of a training split: examples a head never trains on, so that the head's own
features can be calibrated for the out-of-domain measure (`ood`, `calibrate`).

Which examples are held out depends on their text alone (a hash, not a seeded shuffle): training and a
later `bundle calibrate` agree without sharing any state, whatever sample (`--max-train`) or order
either reads, and copies of one text fall on the same side (no duplicate leaks from training into
calibration)."""

from __future__ import annotations

import hashlib

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
