"""Reading recipe files: camelCase keys, old and unknown keys refused by name, the default recipe unchanged."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from mtbert.recipe_file import RecipeError, read_recipe, stage_hyper, study_settings, task_settings
from mtbert.train import hyper_record

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GOLDEN = Path(__file__).resolve().parent / "golden" / "default-recipe-settings.json"


def test_the_default_recipe_describes_the_build_it_described_before_the_keys_were_renamed() -> None:
    """Every task's settings equal what the recipe (then with full_epochs, distill_lr, ...) gave the old loader,
    but for the deliberate changes since (recorded in the golden file too: WNLI left out, F=4 and full-width
    students for the slot tasks). Hyper-parameters added since (min_steps, patience) were recorded without:
    they must keep the old behaviour (0)."""
    recipe = read_recipe(RECIPES / "default.json")
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert list(recipe["tasks"]) == list(recorded)
    for task, expected in recorded.items():
        expected.update({key: hyper_record(expected[key]) for key in ("fullHyper", "hyper", "distillHyper")})
        settings = task_settings(recipe, task)
        study = study_settings(settings)
        found = {
            "fullHyper": asdict(study.reference_hyper), "hyper": asdict(study.hyper), "distillHyper": asdict(study.distill_hyper),
            "distill": asdict(study.weights), "widths": list(study.widths), "frozen": list(study.frozen), "students": list(study.students),
            "tolerance": study.tolerance, "maxTrain": settings.get("maxTrain"), "seed": settings.get("seed", 0), "crf": settings.get("crf", False),
            "fallback": settings.get("fallback"),
        }
        assert found == expected, task


def _write(tmp_path: Path, defaults: dict, tasks: dict | None = None) -> Path:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"name": "t", "version": "1", "defaults": {"frozen": [1], "students": [1], **defaults}, "tasks": tasks or {"sst2": {}}}), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new"), [("full_epochs", "fullEpochs"), ("distill_lr", "distillLr"), ("full_batchSize", "fullBatchSize")])
def test_snake_case_keys_are_refused_with_their_new_name(tmp_path: Path, old: str, new: str) -> None:
    with pytest.raises(RecipeError, match=rf"recipe.json: tasks.sst2.{old} is now '{new}' \(recipe keys are camelCase"):
        read_recipe(_write(tmp_path, {}, {"sst2": {old: 1}}))


def test_unknown_keys_are_refused_where_they_are(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"defaults.learningRate is not a recipe key; known: .*fullLr"):
        read_recipe(_write(tmp_path, {"learningRate": 1e-3}))
    with pytest.raises(RecipeError, match=r"tasks.sst2.fallback.max_cost is not a recipe key; known: label, maxCost, probe, probeLabel"):
        read_recipe(_write(tmp_path, {}, {"sst2": {"fallback": {"label": "x", "max_cost": 1}}}))


@pytest.mark.parametrize("share", [0.6, -0.1, "0.1", True])
def test_a_calibration_share_outside_zero_to_half_is_refused(tmp_path: Path, share: object) -> None:
    with pytest.raises(RecipeError, match=r"tasks.sst2.calibrationShare must be a number in \[0, 0.5\]"):
        read_recipe(_write(tmp_path, {}, {"sst2": {"calibrationShare": share}}))
    assert read_recipe(_write(tmp_path, {}, {"sst2": {"calibrationShare": 0.15}}))["tasks"]["sst2"]["calibrationShare"] == 0.15


def test_a_stage_takes_its_own_hyper_parameters_and_the_teachers_for_the_rest() -> None:
    settings = {"epochs": 3, "batchSize": 16, "lr": 1e-3, "seed": 4, "fullLr": 1e-4, "distillEpochs": 2, "distillBatchSize": 8}
    assert asdict(stage_hyper(settings)) == {"epochs": 3, "batch_size": 16, "lr": 1e-3, "warmup": 0.1, "weight_decay": 0.01, "seed": 4, "min_steps": 0, "patience": 0}
    assert (stage_hyper({**settings, "minSteps": 200, "fullPatience": 3}, "full").min_steps, stage_hyper({**settings, "fullPatience": 3}, "full").patience) == (200, 3)
    assert (stage_hyper(settings, "full").epochs, stage_hyper(settings, "full").lr) == (3, 1e-4)
    assert (stage_hyper(settings, "distill").epochs, stage_hyper(settings, "distill").batch_size, stage_hyper(settings, "distill").lr) == (2, 8, 1e-3)


def test_a_reference_is_read_from_the_recipes_folder_and_one_from_other_weights_refused(tmp_path: Path) -> None:
    from mtbert.recipe_file import reference_file

    recipe = {"references": "refs"}
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "sst2.json").write_text(json.dumps({"task": "sst2", "checkpoint": {"fingerprint": "ab" * 32}, "best": {"score": 90.0}}), encoding="utf-8")
    assert reference_file(recipe, tmp_path / "recipe.json", "sst2", "ab" * 32)["best"] == {"score": 90.0}
    assert reference_file(recipe, tmp_path / "recipe.json", "cola", "ab" * 32) is None  # no file: the study's own full fine-tuning
    assert reference_file({}, tmp_path / "recipe.json", "sst2", "ab" * 32) is None  # the recipe names no folder
    with pytest.raises(RecipeError, match=r"refs/sst2.json: trained from other pretrained weights \(fingerprint abababababab\)"):
        reference_file(recipe, tmp_path / "recipe.json", "sst2", "cd" * 32)
