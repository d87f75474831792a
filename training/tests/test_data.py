"""Bringing your own dataset: the single-task folder (no tasks.json), CSV, and errors that say what is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtbert.data import DatasetError, load_task_spec, read_examples, split_file


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_single_task_folder_needs_no_tasks_json(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", 'text,label\n"slow, but worth it",good\nawful,bad\nfine,good\n')
    _write(tmp_path / "dev.csv", "text,label\nnice,good\n")
    spec = load_task_spec(tmp_path, "reviews", "Review polarity.")
    assert (spec.name, spec.input, spec.kind, spec.labels, spec.description) == ("reviews", "single", "classification", ["bad", "good"], "Review polarity.")
    assert split_file(tmp_path, "reviews", "train") == tmp_path / "train.csv"
    examples = read_examples(split_file(tmp_path, "reviews", "train"), spec)
    assert [(e.text, e.label) for e in examples] == [("slow, but worth it", 1), ("awful", 0), ("fine", 1)]
    _write(tmp_path / "dev.csv", "text,label\nnice,meh\n")
    with pytest.raises(DatasetError, match=r"dev.csv:2: field 'label' is 'meh', not a label of task reviews; accepted: bad, good"):
        read_examples(split_file(tmp_path, "reviews", "dev"), spec)


def test_a_single_task_folder_of_pairs_in_jsonl(tmp_path: Path) -> None:
    _write(tmp_path / "train.jsonl", '{"text": "a", "text_pair": "b", "label": "same"}\n{"text": "a", "text_pair": "c", "label": "other"}\n')
    spec = load_task_spec(tmp_path, "pairs")
    assert (spec.input, spec.labels) == ("pair", ["other", "same"])
    assert spec.description  # a default one
    _write(tmp_path / "train.csv", "text,label\nx,y\n")
    with pytest.raises(DatasetError, match="both exist; keep one"):
        split_file(tmp_path, "pairs", "train")


def test_tasks_json_errors_name_the_file_and_field_and_list_what_is_accepted(tmp_path: Path) -> None:
    _write(tmp_path / "tasks.json", json.dumps({"mine": {"kind": "single-sentence classification", "labels": ["a", "b"]}}))
    with pytest.raises(DatasetError, match=r'tasks.json: expected \{"tasks": .*no "tasks" object \(found: mine\)'):
        load_task_spec(tmp_path, "mine")
    _write(tmp_path / "tasks.json", json.dumps({"tasks": {"mine": {"kind": "classification", "labels": ["a", "b"]}}}))
    with pytest.raises(DatasetError, match=r"tasks.json: tasks.mine.kind is 'classification'; accepted kinds: 'single-sentence classification', 'sentence-pair classification', 'regression', 'token tagging \(BIO slots\)'"):
        load_task_spec(tmp_path, "mine")
    _write(tmp_path / "tasks.json", json.dumps({"tasks": {"mine": {"kind": "single-sentence classification", "labels": "a,b"}}}))
    with pytest.raises(DatasetError, match=r"tasks.mine.labels: expected a list of at least 2 strings"):
        load_task_spec(tmp_path, "mine")
    _write(tmp_path / "tasks.json", json.dumps({"tasks": {"mine": {"kind": "single-sentence classification", "labels": ["a", "b"], "description": "Mine."}}}))
    assert load_task_spec(tmp_path, "mine").description == "Mine."
    assert load_task_spec(tmp_path, "mine", "Given.").description == "Given."
    assert split_file(tmp_path, "mine", "dev") == tmp_path / "mine" / "dev.jsonl"


def test_line_errors_name_file_line_and_field(tmp_path: Path) -> None:
    _write(tmp_path / "tasks.json", json.dumps({"tasks": {"mine": {"kind": "single-sentence classification", "labels": ["a", "b"]}}}))
    spec = load_task_spec(tmp_path, "mine")
    bad = _write(tmp_path / "bad.jsonl", '{"text": "ok", "label": "a"}\n\n{"sentence": "x", "label": "a"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:3: field 'text' is missing or empty; a line of task mine is \{\"text\": str, \"label\": str\}"):
        read_examples(bad, spec)
    _write(bad, '{"text": "ok", "label": "a"\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: not valid JSON"):
        read_examples(bad, spec)
    csv = _write(tmp_path / "bad.csv", "sentence,label\nx,a\n")
    with pytest.raises(DatasetError, match=r"bad.csv:1: the header must name the columns text, label"):
        read_examples(csv, spec)
    with pytest.raises(DatasetError, match=r"neither tasks.json .* nor train.jsonl / train.csv"):
        load_task_spec(tmp_path / "empty", "mine")
