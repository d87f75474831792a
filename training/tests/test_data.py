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


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_and_crlf_reads(tmp_path: Path) -> None:
    _write_bytes(tmp_path / "train.csv", "\ufefftext,label\r\nturn on the lights,lights\r\n\"lock it, now\",door\r\n".encode("utf-8"))
    spec = load_task_spec(tmp_path, "home")
    assert spec.labels == ["door", "lights"]
    examples = read_examples(tmp_path / "train.csv", spec)
    assert [(e.text, e.label) for e in examples] == [("turn on the lights", 1), ("lock it, now", 0)]
    _write_bytes(tmp_path / "dev.jsonl", '\ufeff{"text": "lights please", "label": "lights"}\n'.encode("utf-8"))
    assert [e.text for e in read_examples(tmp_path / "dev.jsonl", spec)] == ["lights please"]


def test_csv_rows_that_would_shift_are_refused_each_with_its_line_and_field(tmp_path: Path) -> None:
    rows = [
        "text,label",
        "turn on the lights,lights",
        '"dim the lights, please,lights',  # line 3: a quote left open
        "lock the door,door",
        "set it to 20, please,thermostat",  # line 5: an unquoted comma
        '"warm" it up,thermostat',  # line 6: text after a closing quote
        "open the door,door",
    ]
    path = _write(tmp_path / "train.csv", "\n".join(rows) + "\n")
    with pytest.raises(DatasetError) as raised:
        load_task_spec(tmp_path, "home")
    message = str(raised.value)
    assert message.startswith(f"{path}: 3 problems:\n")
    assert f"{path}:3: field 'text': unterminated quote" in message
    assert f"{path}:5: 3 fields, the header names 2 (text, label)" in message
    assert f"{path}:6: not valid CSV" in message
    assert ":4:" not in message and ":7:" not in message  # the lines after a bad one are read as themselves


def test_a_field_that_is_not_the_first_names_its_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.csv", 'text,label\nfine,"good\nok,good\n')
    with pytest.raises(DatasetError, match=rf"{path}:2: field 'label': unterminated quote"):
        load_task_spec(tmp_path, "r")


def test_non_utf8_bytes_are_reported_with_their_line(tmp_path: Path) -> None:
    path = _write_bytes(tmp_path / "train.csv", b"text,label\nhello,a\ncaf\xe9 au lait,b\nbye,b\n")
    with pytest.raises(DatasetError, match=rf"{path}:3: not UTF-8 \(byte 0xe9 at column 4\)"):
        load_task_spec(tmp_path, "r")
    path = _write_bytes(tmp_path / "x" / "train.jsonl", b'{"text": "a", "label": "a"}\n{"text": "\xff", "label": "b"}\n')
    with pytest.raises(DatasetError, match=rf"{path}:2: not UTF-8 \(byte 0xff"):
        load_task_spec(tmp_path / "x", "r")


def test_a_file_s_problems_are_listed_together_up_to_twenty(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", "text,label\na,x\nb,y\n")
    spec = load_task_spec(tmp_path, "r")
    dev = _write(tmp_path / "dev.csv", "text,label\n" + "".join(f"t{i},z{i}\n" for i in range(25)))
    with pytest.raises(DatasetError) as raised:
        read_examples(dev, spec)
    lines = str(raised.value).splitlines()
    assert lines[0] == f"{dev}: 25 problems (the first 20 listed):"
    assert len(lines) == 21 and lines[1].strip().startswith(f"{dev}:2: field 'label' is 'z0', not a label of task r")
    jsonl = _write(tmp_path / "dev.jsonl", '{"text": "a", "label": "x"}\n[1]\n{"text": \n{"label": "x"}\n')
    with pytest.raises(DatasetError) as raised:
        read_examples(jsonl, spec)
    message = str(raised.value)
    assert f"{jsonl}:2: expected a JSON object per line, found list" in message
    assert f"{jsonl}:3: not valid JSON" in message
    assert f"{jsonl}:4: field 'text' is missing or empty" in message


def test_a_csv_header_names_known_columns_once(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.csv", "text,label,id\na,x,1\n")
    with pytest.raises(DatasetError, match=rf"{path}:1: the header must name the columns text, label .*; unknown: 'id'"):
        load_task_spec(tmp_path, "r")
    _write(path, "text,label,text\na,x,y\n")
    with pytest.raises(DatasetError, match=rf"{path}:1: a column is named twice"):
        load_task_spec(tmp_path, "r")
    _write(path, " text , label\n\"a, b\",x\nc,y\n")  # spaces around the names are not part of them
    assert load_task_spec(tmp_path, "r").labels == ["x", "y"]
