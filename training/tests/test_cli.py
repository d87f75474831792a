from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mtbert.cli import build_parser

TRAINING = Path(__file__).resolve().parents[1]
COMMANDS = ["train", "distill", "full", "reference", "sweep", "bundle", "embedding-eval", "fallback", "export-head", "export-single", "export-baselines", "fixtures", "recipe"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mtbert", *args], cwd=TRAINING, capture_output=True, text=True, timeout=300)


def test_the_parser_has_exactly_these_commands() -> None:
    """A command added or dropped fails here until COMMANDS (and so the help test) follows."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0  # argparse exits 0 after any help: the text is what is checked
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"usage: mtbert {command} [-h] "), help_text[:200]
    assert re.search(r"^  --[a-z0-9-]+", help_text, re.MULTILINE), help_text  # its own options are described, not only -h


def test_bad_checkpoint_path_is_a_clear_error(tmp_path: Path) -> None:
    result = run("train", "--pretrained", str(tmp_path / "nope"), "--task", "sst2", "--frozen", "2", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "checkpoint folder not found" in result.stderr


def test_sweep_and_bundle_from_the_command_line(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    common = ["--pretrained", str(tiny_checkpoint), "--data", str(tiny_data), "--max-length", "32", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--min-steps", "8", "--patience", "2"]
    # Every teacher within tolerance and every student distilled: f1-s1 exists whatever the scores.
    sweep = run("sweep", "--task", "sst2", "--frozen", "1,2", "--students", "1", "--tolerance", "100", "--all-students", "--out", str(tmp_path / "sw"), *common)
    assert sweep.returncode == 0, sweep.stderr
    assert "(chosen)" in sweep.stdout
    assert "examples per label (train/dev): 0 32/16, 1 32/16" in sweep.stderr
    assert "| **all** | 32 |" in sweep.stdout  # the chosen head's dev answers per label
    steps = json.loads((tmp_path / "sw" / "f1" / "run.json").read_text(encoding="utf-8"))["hyper"]["steps"]
    assert steps["planned"] == 8 and steps["kept"] <= steps["run"] <= 8
    assert (tmp_path / "sw" / "frozen-layers.png").stat().st_size > 1000
    added = run("bundle", "add", str(tmp_path / "b"), "--run", str(tmp_path / "sw" / "f1-s1"), "--name", "cli", "--version", "1", "--max-length", "32")
    assert added.returncode == 0, added.stderr
    def fallback() -> dict:
        return json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["tasks"][0]["output"]["fallback"]
    assert fallback()["threshold"] == 0.02 and fallback()["calibration"]["tail"] == "log-normal"  # 64 rows: the fitted curve and its default
    teacher = json.loads((tmp_path / "sw" / "f1" / "run.json").read_text(encoding="utf-8"))["metrics"]
    assert json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["tasks"][0]["metrics"]["teacher"] == teacher  # the student's teacher, found beside it
    assert run("bundle", "retarget", str(tmp_path / "b"), "--rejection", "0.03").returncode == 0
    assert fallback()["threshold"] == 0.03
    percent = run("bundle", "retarget", str(tmp_path / "b"), "--rejection", "3")
    assert percent.returncode == 2 and "--rejection: a share of in-scope inputs between 0 and 0.5 (0.03 for 3%), got 3" in percent.stderr
    assert run("bundle", "verify", str(tmp_path / "b")).returncode == 0
    single = run("export-single", "--run", str(tmp_path / "sw" / "f2"), "--out", str(tmp_path / "single.onnx"))
    assert single.returncode == 0, single.stderr
    missing = run("bundle", "replace", str(tmp_path / "b"), "--run", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a run folder" in missing.stderr


@pytest.mark.parametrize("columns", range(60, 141, 7))
def test_help_shows_the_defaults(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default checkpoint path's length depends on where the repo is cloned: at any terminal width
    # its hyphenated name must stay whole (argparse's own wrapping broke it at a hyphen in CI).
    monkeypatch.setenv("COLUMNS", str(columns))
    sweep = next(a for a in build_parser()._actions if a.dest == "command").choices["sweep"]  # type: ignore[index]
    text = " ".join(sweep.format_help().split())  # unwrapped
    assert "(default: 32)" in text and "(default: 2,3,4,5)" in text and "all-minilm-l6-v2" in text


def test_a_head_trained_with_a_calibration_share_is_measured_on_its_own_features_too(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    """`--calibration-share`: that part of train is never trained on; `bundle add` fits both statistics on
    the rest and calibrates the combined distance on it (the graph computes what the manifest says)."""
    common = ["--pretrained", str(tiny_checkpoint), "--data", str(tiny_data), "--max-length", "32", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--min-steps", "4", "--patience", "0"]
    sweep = run("sweep", "--task", "snips", "--frozen", "2", "--students", "1", "--no-full", "--tolerance", "100", "--calibration-share", "0.25", "--out", str(tmp_path / "sw"), *common)
    assert sweep.returncode == 0, sweep.stderr
    hyper = json.loads((tmp_path / "sw" / "f2" / "run.json").read_text(encoding="utf-8"))["hyper"]
    from mtbert.data import load_task_spec, read_examples
    from mtbert.holdout import split

    kept, held = split(read_examples(tiny_data / "snips" / "train.jsonl", load_task_spec(tiny_data, "snips")), 0.25)
    assert hyper["calibration_share"] == 0.25 and hyper["train_examples"] == len(kept) and held
    added = run("bundle", "add", str(tmp_path / "b"), "--run", str(tmp_path / "sw" / "f2"), "--name", "cli", "--version", "1", "--max-length", "32")
    assert added.returncode == 0, added.stderr
    entry = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["tasks"][0]
    assert entry["calibrationShare"] == 0.25
    measures = entry["head"]["outOfDomain"]["combined"]["measures"]
    assert [(m["features"].split(",")[0].split(" (")[0], m["distance"].split(" to ")[1]) for m in measures] == [
        ("trunk layer mean", "the nearest class mean"), ("head [CLS] state", "the nearest class mean"), ("head [CLS] state", "the nearest training example")
    ]
    assert measures[2]["references"] == len(kept)  # under ood.NEIGHBOURS: every example trained on
    calibration = entry["output"]["fallback"]["calibration"]
    assert calibration["examples"] == len(held) and calibration["method"].startswith("held out of training (snips: 0.25 of train)")
    assert entry["output"]["fallback"]["aimedAt"] == 0.02 and [m["weight"] for m in measures] == [0.5, 0.25, 0.25]  # a few held-out rows: 2%
    assert run("bundle", "verify", str(tmp_path / "b")).returncode == 0

    def settings() -> tuple[float, list[float], str]:
        task = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["tasks"][0]
        fallback = task["output"]["fallback"]
        return fallback["aimedAt"], [m["weight"] for m in task["head"]["outOfDomain"]["combined"]["measures"]], fallback["calibration"]["method"]

    # Another weighting and rate (CLINC150 serves the head's features alone) ...
    chosen = run("bundle", "calibrate", str(tmp_path / "b"), "--data", str(tiny_data), "--pretrained", str(tiny_checkpoint), "--ood-weights", "0,1,1", "--rejection", "0.03")
    assert chosen.returncode == 0, chosen.stderr
    aimed, weights, method = settings()
    assert aimed == 0.03 and weights == [0.0, 0.5, 0.5] and "averaged with weights 0, 1/2, 1/2;" in method
    # ... stay with the task when it is calibrated, retargeted or replaced again without them.
    again = run("bundle", "calibrate", str(tmp_path / "b"), "--data", str(tiny_data), "--pretrained", str(tiny_checkpoint))
    assert again.returncode == 0, again.stderr
    assert settings() == (aimed, weights, method)
    assert run("bundle", "retarget", str(tmp_path / "b")).returncode == 0 and settings()[0] == 0.03
    replaced = run("bundle", "replace", str(tmp_path / "b"), "--run", str(tmp_path / "sw" / "f2"), "--data", str(tiny_data), "--pretrained", str(tiny_checkpoint))
    assert replaced.returncode == 0, replaced.stderr
    assert settings() == (aimed, weights, method)
    assert run("bundle", "verify", str(tmp_path / "b")).returncode == 0
    for bad_weights, message in (("1,2", "three parts"), ("0,0,0", "not all 0"), ("-1,1,1", "non-negative"), ("nan,1,1", "finite")):
        refused = run("bundle", "calibrate", str(tmp_path / "b"), "--data", str(tiny_data), f"--ood-weights={bad_weights}")
        assert refused.returncode == 2 and "--ood-weights" in refused.stderr and message in refused.stderr, refused.stderr
    bad = run("sweep", "--task", "snips", "--calibration-share", "0.7", "--out", str(tmp_path / "x"), *common)
    assert bad.returncode == 2 and "--calibration-share: must lie in [0, 0.5], not 0.7" in bad.stderr
