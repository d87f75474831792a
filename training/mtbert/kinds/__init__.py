"""The head kinds, one module each (classification, regression, tagging), found here by name.

A module of this package other than `base` defines `KIND`, an `OutputKind`; it is registered by
being here (modules in name order), so adding a kind is adding its module and its tests
(docs/architecture.md, "A new head kind")."""

from __future__ import annotations

import importlib
import pkgutil

from .base import OutputKind, SentenceKind


def _discover() -> tuple[OutputKind, ...]:
    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module == "base":
            continue
        kind = getattr(importlib.import_module(f"{__name__}.{module}"), "KIND", None)
        if not isinstance(kind, OutputKind):
            raise ImportError(f"{__name__}.{module}: a kind module defines KIND, an OutputKind")
        found.append(kind)
    return tuple(found)


KINDS: tuple[OutputKind, ...] = _discover()
_BY_NAME = {kind.name: kind for kind in KINDS}


def kind_named(name: str) -> OutputKind:
    """The kind a TaskSpec, a run or a manifest names."""
    kind = _BY_NAME.get(name)
    if kind is None:
        raise ValueError(f"unknown output kind {name!r}; known: {', '.join(_BY_NAME)}")
    return kind


def source_kinds() -> dict[str, tuple[str, OutputKind]]:
    """tasks.json's kinds -> (input, the head kind they are read as)."""
    return {source: (input_kind, kind) for kind in KINDS for source, input_kind in kind.sources.items()}


__all__ = ["KINDS", "OutputKind", "SentenceKind", "kind_named", "source_kinds"]
