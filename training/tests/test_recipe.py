from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from mtbert.bundle import verify
from mtbert.checkpoint import BertConfig
from mtbert.recipe import build_from_recipe
from mtbert.sweep import SweepResult, choose_trunk_depth, rechoose


def test_recipe_builds_a_bundle_and_a_report(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    recipe = {
        "name": "tiny", "version": "0.1", "pretrained": str(tiny_checkpoint), "data": str(tiny_data),
        "maxSequenceLength": 32, "plots": ["sst2"],
        "defaults": {"frozen": [1, 2], "students": [1], "epochs": 1, "batchSize": 16, "lr": 1e-3, "maxTrain": 32, "tolerance": 1.0},
        "tasks": {"sst2": {}, "stsb": {"frozen": [2]}},
        "notes": ["## Notes", "", "tiny"],
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    assert verify(tmp_path / "bundle") == []
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert sorted(t["name"] for t in manifest["tasks"]) == ["sst2", "stsb"]
    assert all("fullFineTuning" in t["metrics"] for t in manifest["tasks"])
    report = (tmp_path / "bundle" / "REPORT.md").read_text()
    assert "python3 -m mtbert recipe" in report and "| **average** |" in report and "frozen-layers-sst2.png" in report
    assert (tmp_path / "bundle" / "frozen-layers-sst2.png").is_file()
    # A second build reuses the runs (no retraining) and gives the same heads.
    before = {t["name"]: t["head"]["sha256"] for t in manifest["tasks"]}
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    after = {t["name"]: t["head"]["sha256"] for t in json.loads((tmp_path / "bundle" / "manifest.json").read_text())["tasks"]}
    assert before == after


def test_recipe_resumes_and_recomputes_only_a_changed_reference(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    recipe = {
        "name": "tiny", "version": "0.1", "pretrained": str(tiny_checkpoint), "data": str(tiny_data), "maxSequenceLength": 32,
        "defaults": {"frozen": [1, 2], "students": [1], "epochs": 1, "batchSize": 16, "lr": 1e-3, "maxTrain": 32},
        "tasks": {"sst2": {}},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    teacher = (tmp_path / "runs" / "sst2" / "f1" / "head.pt").stat().st_mtime_ns
    first = json.loads((tmp_path / "runs" / "sst2" / "sweep.json").read_text())
    recipe["defaults"]["fullLr"] = 5e-4  # only the reference changes
    path.write_text(json.dumps(recipe), encoding="utf-8")
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    second = json.loads((tmp_path / "runs" / "sst2" / "sweep.json").read_text())
    assert second["full_hyper"]["lr"] == 5e-4 and first["full_hyper"]["lr"] == 1e-3
    assert (tmp_path / "runs" / "sst2" / "f1" / "head.pt").stat().st_mtime_ns == teacher  # teachers reused
    assert [r["metrics"] for r in second["rows"] if r["method"] == "partial"] == [r["metrics"] for r in first["rows"] if r["method"] == "partial"]


def test_recipe_retrains_only_the_students_when_distillation_settings_change(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    recipe = {
        "name": "tiny", "version": "0.1", "pretrained": str(tiny_checkpoint), "data": str(tiny_data), "maxSequenceLength": 32,
        "defaults": {"frozen": [1], "students": [1], "epochs": 1, "batchSize": 16, "lr": 1e-3, "maxTrain": 32, "distillEpochs": 1},
        "tasks": {"sst2": {}},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    runs = tmp_path / "runs" / "sst2"
    teacher, student = (runs / "f1" / "head.pt").stat().st_mtime_ns, (runs / "f1-s1" / "head.pt").stat().st_mtime_ns
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)  # unchanged: nothing retrains
    assert (runs / "f1-s1" / "head.pt").stat().st_mtime_ns == student
    recipe["defaults"]["distillEpochs"] = 2
    path.write_text(json.dumps(recipe), encoding="utf-8")
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    assert (runs / "f1" / "head.pt").stat().st_mtime_ns == teacher  # teacher reused
    assert (runs / "f1-s1" / "head.pt").stat().st_mtime_ns != student  # student retrained with the new settings
    assert json.loads((runs / "f1-s1" / "run.json").read_text())["hyper"]["epochs"] == 2


def _study(task: str, full: float, rows: list[tuple[str, int, int, float]]) -> SweepResult:
    table = [{"method": "x", "run": run, "branch_layer": branch, "head_layers": layers, "metrics": {"score": score}} for run, branch, layers, score in rows]
    return SweepResult(task, "accuracy", {"score": full}, table, table[0], False, 1.0)


def test_the_trunk_depth_is_chosen_for_the_whole_bundle(tmp_path: Path) -> None:
    base = BertConfig(vocab_size=10, hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024)
    # a: its cheapest head branches at 5, an equally cheap one at 4; b: only at 4 or below.
    a = _study("a", 50.0, [("f5", 5, 1, 50.0), ("f4-s1", 4, 1, 49.5), ("f3", 3, 3, 49.8)])
    b = _study("b", 80.0, [("f4-s1", 4, 1, 80.0), ("f2", 2, 4, 79.0)])
    # c meets its target nowhere: it takes its best head within the depth and constrains nothing.
    c = _study("c", 90.0, [("f5", 5, 1, 10.0), ("f2", 2, 4, 20.0)])
    studies = {s.task: (s, tmp_path / s.task) for s in (a, b, c)}
    for s in (a, b, c):
        (tmp_path / s.task).mkdir()
    depth = choose_trunk_depth(studies, base)
    assert depth == 4  # 4 + two 1-layer heads + c's best at ≤ 4 beats 5 + the same heads
    assert rechoose(a, tmp_path / "a", base, max_branch=depth).chosen["run"] == "f4-s1"
    assert rechoose(c, tmp_path / "c", base, max_branch=depth).chosen["run"] == "f2"
    # A task that can meet its target only at 5 forces the trunk to 5.
    d = _study("d", 70.0, [("f5", 5, 1, 70.0), ("f2", 2, 4, 60.0)])
    assert choose_trunk_depth({**studies, "d": (d, tmp_path / "d")}, base) == 5


def test_a_head_is_held_to_the_best_score_when_full_fine_tuning_is_weaker(tmp_path: Path) -> None:
    base = BertConfig(vocab_size=10, hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024)
    # Full fine-tuning under-trained (80): the cheap student (85) beats it, but is 5 points below the teacher (90).
    study = _study("t", 80.0, [("f5", 5, 1, 90.0), ("f5-s1-w50", 5, 1, 85.0)])
    study.rows[1]["width"] = 0.5
    (tmp_path / "t").mkdir()
    assert study.reference() == 90.0
    chosen = rechoose(study, tmp_path / "t", base)
    assert (chosen.chosen["run"], chosen.target_met) == ("f5", True)
    study.rows[1]["metrics"]["score"] = 89.5  # within a point of the best: the cheaper head wins
    assert rechoose(study, tmp_path / "t", base).chosen["run"] == "f5-s1-w50"


def test_a_study_saved_before_kinds_were_recorded_reads_its_kind_from_its_runs(tmp_path: Path) -> None:
    study = _study("slots", 50.0, [("f5", 5, 1, 50.0)])
    raw = {k: v for k, v in asdict(study).items() if k != "kind"}  # a sweep.json of an older toolkit
    (tmp_path / "sweep.json").write_text(json.dumps(raw), encoding="utf-8")
    task = {"name": "slots", "input": "single", "kind": "tagging", "labels": ["B-x", "O"], "label_names": ["B-x", "O"], "value_range": None, "description": ""}
    run = {"task": task, "method": "partial", "branch_layer": 5, "head_layers": 1, "pretrained_path": "p", "pretrained_name": "p", "fingerprint": "f", "config": {}}
    (tmp_path / "f5").mkdir()
    (tmp_path / "f5" / "run.json").write_text(json.dumps(run), encoding="utf-8")
    loaded = SweepResult.load(tmp_path)
    assert loaded.kind == "tagging" and loaded.output_kind.per_token
    assert _study("t", 1.0, [("f5", 5, 1, 1.0)]).kind == "classification"  # studies built in memory without one


def test_a_kept_reference_is_the_full_fine_tuning_of_its_task(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    from mtbert.cli import main

    recipe = {
        "name": "tiny", "version": "0.1", "pretrained": str(tiny_checkpoint), "data": str(tiny_data), "references": "refs", "maxSequenceLength": 32,
        "defaults": {"frozen": [2], "students": [1], "epochs": 1, "batchSize": 16, "lr": 1e-3, "maxTrain": 32},
        "tasks": {"sst2": {}, "stsb": {}},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    main(["reference", "--recipe", str(path), "--tasks", "sst2", "--runs", str(tmp_path / "reference-runs"), "--results", str(tmp_path / "refs"), "--epochs", "2", "--lr", "1e-3"])
    reference = json.loads((tmp_path / "refs" / "sst2.json").read_text())
    assert reference["trainExamples"] == 32 and reference["settings"]["maxLength"] == 32  # the recipe's maxTrain and length
    build_from_recipe(path, tmp_path / "bundle", tmp_path / "runs", None, 2)
    study = json.loads((tmp_path / "runs" / "sst2" / "sweep.json").read_text())
    assert study["full"] == reference["best"] and study["full_hyper"]["source"] == "mtbert reference"
    own = json.loads((tmp_path / "runs" / "stsb" / "sweep.json").read_text())  # no reference file: its own full fine-tuning
    assert "source" not in own["full_hyper"] and own["full_hyper"]["lr"] == 1e-3
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert next(t for t in manifest["tasks"] if t["name"] == "sst2")["metrics"]["fullFineTuning"] == reference["best"]
    assert "`full FT` of sst2: full fine-tuning as published work trains it" in (tmp_path / "bundle" / "REPORT.md").read_text()
