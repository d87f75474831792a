"""Builds a whole bundle from a recipe file: every task's sweep, the chosen heads merged into one
bundle, and REPORT.md with every figure. Runs are kept, so `--only` retrains a subset."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .bundle import BundleWriter
from .fallback import CURVE_FILE, FallbackChoice, fit_fallback
from .checkpoint import BertConfig, Checkpoint, load_checkpoint
from .pipeline import TaskSession, served_metrics, set_threads
from .runs import RUN_FILE, read_info
from .data import load_task_spec, read_examples
from .recipe_file import read_recipe, reference_file, study_settings, task_settings
from .sweep import MEAN_TOKENS, SWEEP_FILE, SweepResult, choose_trunk_depth, markdown_table, rechoose, row_cost, run_sweep, study_is_current


def build_from_recipe(recipe_path: Path, out: Path, runs: Path, only: str | None, threads: int | None, tasks: str | None = None) -> None:
    """Trains what the recipe's studies lack, then writes the bundle. With `tasks`, only those
    tasks' studies are brought up to date and no bundle is written: several processes can share
    the training of one recipe (each on its own tasks), and a last plain run then builds the bundle
    from the kept runs."""
    set_threads(threads)
    recipe = read_recipe(recipe_path)
    base = recipe_path.parent
    pretrained = (base / recipe["pretrained"]).resolve()
    data_root = (base / recipe["data"]).resolve()
    checkpoint = load_checkpoint(pretrained)
    retrain = set(only.split(",")) if only else None
    started = time.time()
    selected = set(tasks.split(",")) if tasks else None
    results = _train_studies(recipe, recipe_path, checkpoint, data_root, runs, retrain, selected)
    if selected is not None:
        return  # a share of the training only; the bundle is built by a run over every task
    _write_bundle(recipe, recipe_path, results, checkpoint, pretrained, data_root, runs, out, started)


def _train_studies(recipe: dict, recipe_path: Path, checkpoint: Checkpoint, data_root: Path, runs: Path, retrain: set[str] | None, selected: set[str] | None) -> dict[str, SweepResult]:
    """Each (selected) task's study, reused when current on the recipe's trunk, else (re)trained."""
    int8 = bool(recipe.get("int8Matmuls", False))  # the trunk's weight matmuls in int8 (`build_trunk`)
    mean_tokens = recipe.get("meanTokensForCost", MEAN_TOKENS)
    results: dict[str, SweepResult] = {}
    if selected and not selected <= set(recipe["tasks"]):
        raise ValueError(f"--tasks names tasks the recipe lacks: {', '.join(sorted(selected - set(recipe['tasks'])))}")
    for task in recipe["tasks"]:
        if selected is not None and task not in selected:
            continue
        settings = task_settings(recipe, task)
        folder = runs / task
        study = study_settings(settings, mean_tokens, reference_file(recipe, recipe_path, task, checkpoint.fingerprint))
        previous = SweepResult.load(folder) if (folder / SWEEP_FILE).is_file() and not (retrain and task in retrain) else None
        if previous is not None and not _on_trunk(previous, folder, int8):
            previous = None  # trained on the other trunk: nothing in it can be reused
        share = float(settings.get("calibrationShare", 0.0))
        if previous is not None and not _held_out_alike(previous, folder, share):
            previous = None  # trained on another part of train: its heads saw (or missed) the calibration part
        if previous is not None and study_is_current(previous, folder, study):
            results[task] = previous  # nothing to train: reuse the study (its head is chosen again below)
            continue
        session = TaskSession.open(
            checkpoint, data_root, task, settings.get("maxTrain"), recipe.get("maxSequenceLength", 128), settings.get("seed", 0), crf=settings.get("crf", False),
            int8_matmuls=int8, calibration_share=share,
        )
        task_started = time.time()
        results[task] = run_sweep(session, folder, study, previous)
        print(f"{task}: chosen {results[task].chosen['run']} ({time.time() - task_started:.0f}s)", flush=True)
    return results


def _write_bundle(recipe: dict, recipe_path: Path, results: dict[str, SweepResult], checkpoint: Checkpoint, pretrained: Path, data_root: Path, runs: Path, out: Path, started: float) -> None:
    """Settles the trunk depth, fits the fallbacks, writes the chosen heads, plots and the report into `out`."""
    mean_tokens = recipe.get("meanTokensForCost", MEAN_TOKENS)
    for task, result in results.items():
        if result.dev_examples is None:  # studies saved before the dev size was recorded
            result.dev_examples = len(read_examples(data_root / task / "dev.jsonl", load_task_spec(data_root, task)))
    # Each study chose its own cheapest head; the trunk they share runs to the deepest branch point,
    # so settle the depth for the bundle as a whole, then choose again within it.
    depth = choose_trunk_depth({t: (r, runs / t) for t, r in results.items()}, checkpoint.config, mean_tokens)
    results = {t: rechoose(r, runs / t, checkpoint.config, mean_tokens, max_branch=depth) for t, r in results.items()}
    if out.exists():
        shutil.rmtree(out)
    writer = BundleWriter(out)
    max_length = recipe.get("maxSequenceLength", 128)
    # Scores of the chosen heads on the trunk as served; the manifest reports these.
    served = {task: served_metrics(checkpoint, data_root, runs / task / r.chosen["run"], max_length) for task, r in results.items()}
    # Out-of-scope fallbacks, chosen on dev for the chosen heads (kept in their run folders, where
    # the bundle writer reads them).
    fallbacks: dict[str, FallbackChoice] = {}
    for task, result in results.items():
        if (spec := task_settings(recipe, task).get("fallback")) is not None:
            fallbacks[task] = fit_fallback(
                checkpoint, data_root, runs / task / result.chosen["run"], spec["label"], spec.get("maxCost", 1.0), spec.get("probe"), spec.get("probeLabel", "oos"), max_length
            )
    for task, result in results.items():
        full = {"fullFineTuning": result.full} if result.full else {}
        teacher = next((r for r in result.rows if r["run"] == result.chosen.get("teacher")), None)
        extra = {"values": served[task], **full, **({"teacher": teacher["metrics"]} if teacher else {})}
        writer.add(runs / task / result.chosen["run"], recipe["name"], recipe["version"], str(pretrained), max_length, extra)
    for plot in recipe.get("plots", []):
        if (runs / plot / "frozen-layers.png").is_file():
            shutil.copyfile(runs / plot / "frozen-layers.png", out / f"frozen-layers-{plot}.png")
    for task in fallbacks:
        shutil.copyfile(runs / task / results[task].chosen["run"] / CURVE_FILE, out / f"fallback-{task}.png")
    examples = {t: read_info(runs / t / r.chosen["run"]).hyper.get("train_examples", 0) for t, r in results.items()}
    write_report(recipe, recipe_path, results, served, out, checkpoint.config, time.time() - started, fallbacks, examples)


def _on_trunk(study: SweepResult, folder: Path, int8: bool) -> bool:
    """Whether a kept study's heads were trained on the trunk the recipe now asks for."""
    runs = [folder / row["run"] for row in study.rows]
    return all(read_info(run).int8_matmuls == int8 for run in runs if (run / RUN_FILE).is_file())


def _held_out_alike(study: SweepResult, folder: Path, share: float) -> bool:
    """Whether a kept study's heads were trained without the calibration share the recipe now asks for (`holdout`)."""
    runs = [folder / row["run"] for row in study.rows]
    return all(read_info(run).hyper.get("calibration_share", 0.0) == share for run in runs if (run / RUN_FILE).is_file())


def serving_cost_by_layers(results: dict[str, SweepResult], config: BertConfig, mean_tokens: float) -> tuple[float, float]:
    """Encoder cost of the bundle relative to one full model per task, in layer-equivalents per
    token (`cost.head_cost`): the trunk to the deepest branch point, once, plus every chosen head;
    against every task's whole model."""
    trunk = max(r.chosen["branch_layer"] for r in results.values())
    heads = sum(row_cost(r.chosen, r.output_kind, config, mean_tokens) for r in results.values())
    return trunk + heads, config.num_hidden_layers * len(results)


def write_report(
    recipe: dict, recipe_path: Path, results: dict[str, SweepResult], served: dict[str, dict[str, float]], out: Path, config: BertConfig, seconds: float,
    fallbacks: dict[str, FallbackChoice] | None = None, train_examples: dict[str, int] | None = None,
) -> None:
    total_layers = config.num_hidden_layers
    tokens = recipe.get("meanTokensForCost", MEAN_TOKENS)
    lines = _report_header(recipe, recipe_path)
    lines += _summary_section(recipe, results, served, config, tokens)
    bundle_cost, separate_cost = serving_cost_by_layers(results, config, tokens)
    lines += [
        "## Serving cost",
        "",
        f"Computed from layer shapes (`mtbert/cost.py`; `bench/run.sh` measures it: docs/benchmarks.md): the bundle runs a trunk of "
        f"{max(r.chosen['branch_layer'] for r in results.values())} layers once and {len(results)} heads (a classification head's last layer works on [CLS] only, with "
        f"folded key and value projections; a tagging head's on every token; a thinner head costs its width); "
        f"one full model per task runs {total_layers} layers × {len(results)} tasks. At {tokens} tokens per utterance that is "
        f"{bundle_cost:.2f} vs {separate_cost} layer-equivalents: **{bundle_cost / separate_cost * 100:.1f}%** of the cost "
        f"({100 - bundle_cost / separate_cost * 100:.1f}% lower).",
        "",
    ]
    lines += fallback_section(fallbacks or {})
    lines += time_section(results, train_examples or {})
    lines += _per_task_section(recipe, results, out)
    lines += recipe.get("notes", [])
    (out / "REPORT.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _report_header(recipe: dict, recipe_path: Path) -> list[str]:
    """The report's title, how to rebuild the bundle, how heads are chosen, and the summary table's head."""
    return [
        f"# Default bundle `{recipe['name']}@{recipe['version']}`: report",
        "",
        "Rebuild from scratch (from the repository root; how long each stage took on a 2-core CPU is under \"Training time\" below):",
        "",
        "```",
        f"/usr/bin/python3 -m mtbert recipe {recipe_path.as_posix()} --out models/default --runs runs/default",
        "```",
        "(with `PYTHONPATH=training`; runs are kept in `runs/`, so `--only sst2,cola` retrains just those tasks).",
        "",
        f"Pretrained start point: `{recipe['pretrained']}` (relative to the recipe). Every figure is the task's dev split, with its GLUE metric",
        "(×100). `score` is the number heads are compared by (GLUE's mean where a task reports two).",
        "A head is chosen as the cheapest (lowest serving cost per token, `mtbert/cost.py`, then the deepest branch point) whose score is within",
        f"{recipe['defaults'].get('tolerance', 1.0):g} point of full fine-tuning. Where no head is (`target met`: no), the cheapest head within one",
        "standard error of the best-scoring one (accuracy: √(p(1−p)/n) on the n dev examples; for other metrics the best head itself).",
        "The tasks share the trunk, which runs to the deepest branch point any head reads, so that depth is settled for the",
        "bundle as a whole (`sweep.choose_trunk_depth`: the depth that makes the trunk plus every task's cheapest head within it",
        "cheapest) and each task chooses among the heads that branch at or below it.",
        "",
        "## Summary",
        "",
        "| task | metric | full FT | chosen head | branch layer | head layers | width | cost (layers) | chosen score | kept | target met | served score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]


def _summary_section(recipe: dict, results: dict[str, SweepResult], served: dict[str, dict[str, float]], config: BertConfig, tokens: float) -> list[str]:
    """One summary row per task, the averages, what serving on the bundle's trunk changed, and the GLUE subset."""
    lines: list[str] = []
    for task, r in results.items():
        c = r.chosen
        ratio = c["metrics"]["score"] / r.full["score"] * 100 if r.full and r.full["score"] > 0 else float("nan")
        cost = row_cost(c, r.output_kind, config, tokens)
        lines.append(f"| {task} | {r.primary} | {r.full['score']:.1f} | {c['run']} | {c['branch_layer']} | {c['head_layers']} | {c.get('width', 1.0):g} | {cost:.3f} | {c['metrics']['score']:.1f} | {ratio:.1f}% | {'yes' if r.target_met else 'no'} | {served[task]['score']:.1f} |")
    full_avg = sum(r.full["score"] for r in results.values()) / len(results)
    chosen_avg = sum(r.chosen["metrics"]["score"] for r in results.values()) / len(results)
    served_avg = sum(v["score"] for v in served.values()) / len(served)
    change = {t: served[t]["score"] - results[t].chosen["metrics"]["score"] for t in results}
    loss, largest = min(change, key=change.__getitem__), max(change, key=lambda t: abs(change[t]))
    lines += [
        f"| **average** | | {full_avg:.1f} | | | | | | {chosen_avg:.1f} | {chosen_avg / full_avg * 100:.1f}% | | {served_avg:.1f} |",
        "",
        "`served score`: the chosen head on the trunk exactly as the bundle serves it (float16 weights, word embeddings in",
        "int8 with a scale per row" + (", every weight matmul of the trunk in int8: a scale per output column, activations with a scale per token;"
                                      " heads trained on those hidden states" if recipe.get("int8Matmuls") else "")
        + "), the figure the manifest reports. Against the chosen score: largest loss "
        f"{min(change[loss], 0.0):+.2f} ({loss}), largest change {change[largest]:+.2f} ({largest}), average {served_avg - chosen_avg:+.2f}.",
        "",
    ]
    lines += reference_note(results, recipe)
    glue = [t for t in results if t in {"sst2", "cola", "mrpc", "stsb", "rte", "wnli"}]
    if glue:
        g_full = sum(results[t].full["score"] for t in glue) / len(glue)
        g_chosen = sum(results[t].chosen["metrics"]["score"] for t in glue) / len(glue)
        lines += [f"GLUE tasks alone ({', '.join(glue)}): full fine-tuning {g_full:.1f}, bundle {g_chosen:.1f} ({g_chosen / g_full * 100:.1f}%).", ""]
    return lines


def _per_task_section(recipe: dict, results: dict[str, SweepResult], out: Path) -> list[str]:
    """Each task's study table, its training settings and its frozen-layers plot."""
    lines: list[str] = []
    lines += [
        "## Per task",
        "",
    ]
    for task, r in results.items():
        lines += [f"### {task}", "", markdown_table(r), ""]
        settings = task_settings(recipe, task)
        lines += [f"Training: {json.dumps({k: v for k, v in settings.items() if k not in ('frozen', 'students')})}", ""]
        if (out / f"frozen-layers-{task}.png").is_file():
            lines += [f"![{task}: dev score against frozen layers](frozen-layers-{task}.png)", ""]
    return lines


def reference_note(results: dict[str, SweepResult], recipe: dict) -> list[str]:
    """Which tasks' `full FT` is a kept reference (`mtbert reference`) rather than the study's own run."""
    kept = {t: r.full_hyper for t, r in results.items() if r.full_hyper and r.full_hyper.get("source") == "mtbert reference"}
    if not kept:
        return []
    described = "; ".join(f"{t}: {h['epochs']} epochs at lr {h['lr']:g}, best epoch {h['bestEpoch']}" for t, h in kept.items())
    return [
        f"`full FT` of {', '.join(kept)}: full fine-tuning as published work trains it (`mtbert reference`; AdamW, linear warm-up over",
        f"{next(iter(kept.values()))['warmup']:g} of the steps and linear decay, the best dev epoch), kept in `{recipe['references']}/<task>.json`: {described}.",
        "",
    ]


def fallback_section(fallbacks: dict[str, FallbackChoice]) -> list[str]:
    """REPORT.md's out-of-scope section: each intent task's rule, threshold and what it buys on dev."""
    if not fallbacks:
        return []
    lines = [
        "## Out-of-scope fallback",
        "",
        "Each intent task answers its fallback label when the chosen rule's measure of the head's output is below the threshold",
        "(`output.fallback` in the manifest; a request may set its own threshold). Chosen on dev alone (`mtbert/fallback.py`): the",
        "highest out-of-scope recall whose in-scope accuracy is at most `max cost` points below the head's own; every rule",
        "(top probability, top-two margin, log-sum-exp of the logits) is measured and the best one kept. Out-of-scope examples: CLINC150's",
        "own `oos` dev queries; for the other intent tasks, which have none, the same 100 CLINC150 `oos` dev queries (what the threshold buys).",
        "",
        "| task | fallback label | rule | threshold | max cost | in-scope accuracy without → with | out-of-scope recall without → with | maxProbability | margin | energy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, f in fallbacks.items():
        s = f.selection
        per_rule = " | ".join(f"{f.chosen[r]['oosRecall']:.1f} @ {f.chosen[r]['inScopeAccuracy']:.2f}" for r in ("maxProbability", "margin", "energy"))
        lines.append(
            f"| {task} | `{f.label}` | {f.rule} | {f.threshold:.4g} | {s['maxCost']:g} | {s['inScopeAccuracyWithout']:.2f} → {s['inScopeAccuracy']:.2f} | "
            f"{s['oosRecallWithout']:.1f} → {s['oosRecall']:.1f} (of {s['oosExamples']:.0f}) | {per_rule} |"
        )
    lines += ["", "(per rule: its best out-of-scope recall @ in-scope accuracy within the cost.)", ""]
    lines += [f"![{task}: in-scope accuracy against out-of-scope recall](fallback-{task}.png)" for task in fallbacks] + [""]
    return lines


def time_section(results: dict[str, SweepResult], examples: dict[str, int]) -> list[str]:
    """REPORT.md's table of wall seconds per stage and task (runs kept from earlier builds count
    the seconds they took then)."""
    lines = [
        "## Training time",
        "",
        "Wall seconds per stage on the build machine (2 cores, shared; a task's stages ran one after another, two tasks at a time",
        "with one thread each where the build was shared with `recipe --tasks`). Frozen states: one pass of the frozen trunk over the",
        "train and dev splits, serving every teacher and student of the task.",
        "",
        "| task | train examples | frozen states | full fine-tuning | teachers | students | total |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    totals = [0.0] * 5
    for task, r in results.items():
        stages = r.stage_seconds or {}
        teachers = sum(row.get("seconds", 0.0) for row in r.rows if row["method"] == "partial")
        students = sum(row.get("seconds", 0.0) for row in r.rows if row["method"] == "distilled")
        values = [stages.get("frozen_states", 0.0), stages.get("full_fine_tuning", 0.0), teachers, students]
        values.append(sum(values))
        totals = [t + v for t, v in zip(totals, values)]
        lines.append(f"| {task} | {examples.get(task, '')} | " + " | ".join(f"{v:.0f}" for v in values) + " |")
    lines.append("| **all** | | " + " | ".join(f"{v:.0f}" for v in totals) + f" |")
    lines += ["", f"In all {totals[-1] / 3600:.1f} hours of stage time.", ""]
    return lines
