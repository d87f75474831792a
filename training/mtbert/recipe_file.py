"""Reading a recipe file (e.g. recipes/default.json): its keys checked, each task's settings resolved.

Recipe keys are camelCase, as in the bundle manifest. A key the toolkit does not know is refused
(a misspelt key would otherwise change nothing, silently); so are the snake_case keys of recipes
written before the convention (`full_epochs`, `distill_lr`, ...), with the name to use instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from .reference import read_reference
from .sweep import MEAN_TOKENS, StudySettings
from .train import DistillWeights, Hyper


class RecipeError(ValueError):
    """A recipe that cannot be used, naming the file and the key."""


RECIPE_KEYS = {"name", "version", "pretrained", "data", "references", "int8Matmuls", "maxSequenceLength", "meanTokensForCost", "plots", "defaults", "tasks", "notes"}
# Hyper-parameters: the teachers' own, and per stage a `full...` (full fine-tuning) or `distill...`
# (students) key that overrides them for that stage alone.
HYPER_KEYS = ("epochs", "batchSize", "lr", "minSteps", "patience")
STAGE_PREFIXES = ("full", "distill")
TASK_KEYS = {
    "frozen", "students", "widths", "tolerance", "seed", "maxTrain", "crf", "distill", "fallback", "calibrationShare", *HYPER_KEYS,
    *(prefix + key[0].upper() + key[1:] for prefix in STAGE_PREFIXES for key in HYPER_KEYS),
}
NESTED_KEYS = {"distill": {"soft", "hidden", "hard", "temperature"}, "fallback": {"label", "maxCost", "probe", "probeLabel"}}
# Keys of recipes written before the keys were all camelCase.
RENAMED_KEYS = {f"{prefix}_{key}": prefix + key[0].upper() + key[1:] for prefix in STAGE_PREFIXES for key in ("epochs", "batchSize", "lr")}


def read_recipe(path: Path) -> dict:
    """The recipe at `path`, its keys checked (RecipeError names the first wrong one)."""
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RecipeError(f"{path}: not valid JSON ({error})") from error
    _check_keys(path, "", recipe, RECIPE_KEYS)
    for key in ("defaults", "tasks"):
        if not isinstance(recipe.get(key), dict):
            raise RecipeError(f"{path}: {key} must be an object")
    _check_task_keys(path, "defaults", recipe["defaults"])
    for task, overrides in recipe["tasks"].items():
        _check_task_keys(path, f"tasks.{task}", overrides)
    return recipe


def _check_task_keys(path: Path, at: str, settings: object) -> None:
    if not isinstance(settings, dict):
        raise RecipeError(f"{path}: {at} must be an object")
    _check_keys(path, f"{at}.", settings, TASK_KEYS)
    share = settings.get("calibrationShare", 0.0)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 0.5:
        raise RecipeError(f"{path}: {at}.calibrationShare must be a number in [0, 0.5] (the share of train held out for calibration), not {share!r}")
    for key, allowed in NESTED_KEYS.items():
        if isinstance(settings.get(key), dict):
            _check_keys(path, f"{at}.{key}.", settings[key], allowed)


def _check_keys(path: Path, at: str, value: dict, allowed: set[str]) -> None:
    for key in value:
        if key in RENAMED_KEYS:
            raise RecipeError(f"{path}: {at}{key} is now {RENAMED_KEYS[key]!r} (recipe keys are camelCase, as in the manifest); rename it")
        if key not in allowed:
            raise RecipeError(f"{path}: {at}{key} is not a recipe key; known: {', '.join(sorted(allowed))}")


def task_settings(recipe: dict, task: str) -> dict:
    """A task's settings: the recipe's defaults, overridden by the task's own."""
    return {**recipe["defaults"], **recipe["tasks"][task]}


def stage_hyper(settings: dict, stage: str = "") -> Hyper:
    """The hyper-parameters of the teachers (`stage` ""), full fine-tuning ("full") or the students
    ("distill"): a stage's own key (`fullLr`) where given, else the teachers' (`lr`)."""
    def value(key: str, default: float) -> float:  # as written: run files compare these values
        own = stage + key[0].upper() + key[1:] if stage else key
        return settings.get(own, settings.get(key, default))

    return Hyper(
        epochs=value("epochs", 3.0), batch_size=value("batchSize", 32), lr=value("lr", 1e-4), seed=settings.get("seed", 0),
        min_steps=value("minSteps", 0), patience=value("patience", 0),  # 0: the epochs alone, as recipes trained before these keys
    )


def reference_file(recipe: dict, recipe_path: Path, task: str, fingerprint: str) -> dict | None:
    """The task's full fine-tuning reference from the recipe's `references` folder (relative to the
    recipe; `mtbert reference` writes it), or None where the recipe names none or the file is absent
    (the study then runs its own full fine-tuning). One trained from other pretrained weights is refused."""
    if "references" not in recipe:
        return None
    folder = recipe_path.parent / recipe["references"]
    reference = read_reference(folder, task)
    if reference is not None and reference["checkpoint"]["fingerprint"] != fingerprint:
        raise RecipeError(f"{folder / (task + '.json')}: trained from other pretrained weights (fingerprint {reference['checkpoint']['fingerprint'][:12]}) than the recipe's ({fingerprint[:12]})")
    return reference


def study_settings(settings: dict, mean_tokens: float = MEAN_TOKENS, kept_reference: dict | None = None) -> StudySettings:
    """What a task's study trains, from its resolved settings (`task_settings`) and the task's kept
    reference (`reference_file`), if any."""
    return StudySettings(
        frozen=tuple(settings["frozen"]),
        students=tuple(settings["students"]),
        hyper=stage_hyper(settings),
        distill_hyper=stage_hyper(settings, "distill"),
        weights=DistillWeights(**settings.get("distill", {})),
        full_hyper=stage_hyper(settings, "full"),
        tolerance=settings.get("tolerance", 1.0),
        widths=tuple(settings.get("widths", [])),
        mean_tokens=mean_tokens,
        kept_reference=kept_reference,
    )
