"""The calibration part of a training split (mtbert.holdout): decided by the text alone."""

from __future__ import annotations

import pytest

from mtbert.holdout import held_out, split
from mtbert.records import Example


def examples(n: int) -> list[Example]:
    return [Example(f"utterance number {i}", None, i % 3) for i in range(n)]


def test_the_share_held_out_is_the_share_asked_for_and_the_same_every_time() -> None:
    rows = examples(4000)
    kept, held = split(rows, 0.15)
    assert len(kept) + len(held) == 4000 and 0.13 < len(held) / 4000 < 0.17
    assert split(rows, 0.15) == (kept, held)
    assert split(list(reversed(rows)), 0.15)[1] == list(reversed(held))  # the order read does not matter
    assert split(rows, 0.0) == (rows, [])


def test_copies_of_one_text_fall_on_the_same_side_and_pairs_count_both_texts() -> None:
    copies = [Example("wake me up at seven", None, 0), Example("wake me up at seven", None, 1)]
    assert held_out(copies[0], 0.3) == held_out(copies[1], 0.3)
    pairs = [Example("same premise", f"hypothesis {i}", 0) for i in range(200)]
    assert 0 < len(split(pairs, 0.3)[1]) < 200


def test_a_share_beyond_half_is_refused() -> None:
    with pytest.raises(ValueError, match=r"calibration share must lie in \[0, 0.5\], not 0.6"):
        split(examples(10), 0.6)
