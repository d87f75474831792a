"""What a dataset line becomes, and the error a bad dataset raises: shared by the dataset reader
(`data`) and the head kinds (`kinds`), which parse their own kind's lines."""

from __future__ import annotations

from dataclasses import dataclass


class DatasetError(ValueError):
    """A dataset that cannot be used, with the file and line."""


@dataclass
class Example:
    text: str
    text_pair: str | None
    label: int | float | list[int]  # class index, a float target for regression, or one tag index per word
    words: list[str] | None = None  # tagging: the pre-split words that `label` tags (text = " ".join(words))


def string_list(value: object, field: str, what: str, minimum: int) -> list[str]:
    """`value` as a list of at least `minimum` unique strings, else a DatasetError naming `field`."""
    if not isinstance(value, list) or len(value) < minimum or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{field}: expected a list of at least {minimum} strings ({what}), found {value!r}"[:300])
    if len(set(value)) != len(value):
        raise DatasetError(f"{field}: entries must be unique")
    return list(value)


def listed(values: list[str], most: int = 20) -> str:
    """The first `most` values, for an error message."""
    return ", ".join(values[:most]) + (f" ... ({len(values)} in all)" if len(values) > most else "")
