"""The tests' synthetic datasets (tests/synthetic.py): reproducible, readable by the toolkit, every label used."""

from __future__ import annotations

from pathlib import Path

from mtbert.data import load_task_spec, read_examples

from .synthetic import DEV, TRAIN, write_synthetic_data


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_lines(tmp_path: Path) -> None:
    a, b, c = (_files(write_synthetic_data(tmp_path / name, seed)) for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert a == b
    assert len(a) == 13 and a.keys() == c.keys()  # tasks.json + 6 tasks x 2 splits
    assert a["sst2/train.jsonl"] != c["sst2/train.jsonl"]


def test_every_split_reads_and_uses_every_label(tiny_data: Path) -> None:
    for task in ("sst2", "snips", "stsb", "rte", "snips_slots", "atis_slots"):
        spec = load_task_spec(tiny_data, task)
        train, dev = (read_examples(tiny_data / task / f"{split}.jsonl", spec) for split in ("train", "dev"))
        assert (len(train), len(dev)) == (TRAIN, DEV), task
        if spec.kind == "classification":
            assert {e.label for e in train} == set(range(len(spec.labels))), task
        elif spec.kind == "tagging":
            assert spec.labels[-1] == "O" and {t for e in train + dev for t in e.label} == set(range(len(spec.labels))), task  # type: ignore[union-attr]
        else:
            assert 0.0 <= min(e.label for e in train) < 1.5 and 4.0 < max(e.label for e in train) <= 5.0  # type: ignore[type-var]
