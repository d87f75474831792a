"""A task's whole study: full fine-tuning, teachers at several frozen depths, students of the
good teachers, the choice of head, and the frozen-layers plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .pipeline import Candidate, TaskSession, choose  # noqa: E402
from .runs import RUN_FILE, load_run  # noqa: E402
from .train import DistillWeights, Hyper  # noqa: E402

SWEEP_FILE = "sweep.json"


@dataclass
class SweepResult:
    task: str
    primary: str
    full: dict[str, float] | None
    rows: list[dict]  # one per head tried: method, run, branch_layer, head_layers, metrics
    chosen: dict
    target_met: bool
    tolerance: float
    full_hyper: dict | None = None  # hyper-parameters of the full fine-tuning reference

    def save(self, folder: Path) -> None:
        (folder / SWEEP_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @staticmethod
    def load(folder: Path) -> "SweepResult":
        return SweepResult(**json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8")))


def trained_with(run: Path, hyper: Hyper, weights: DistillWeights | None = None) -> bool:
    """Whether the run in folder `run` exists and was trained with these settings (a resumed study
    retrains a head whose settings changed, e.g. more distillation epochs)."""
    if not (run / RUN_FILE).is_file():
        return False
    recorded = json.loads((run / RUN_FILE).read_text(encoding="utf-8"))["hyper"]
    same = all(recorded.get(k) == v for k, v in asdict(hyper).items())
    return same and (weights is None or recorded.get("distill") == asdict(weights))


def study_is_current(previous: SweepResult, out: Path, hyper: Hyper, distill_hyper: Hyper, weights: DistillWeights, full_hyper: Hyper) -> bool:
    """Whether every head of a finished study was trained with the current settings."""
    if previous.full is not None and previous.full_hyper != asdict(full_hyper):
        return False
    return all(
        trained_with(out / r["run"], hyper) if r["method"] == "partial" else trained_with(out / r["run"], distill_hyper, weights)
        for r in previous.rows
    )


def run_sweep(
    session: TaskSession, out: Path, frozen: list[int], students: list[int], hyper: Hyper, distill_hyper: Hyper, weights: DistillWeights,
    tolerance: float = 1.0, with_full: bool = True, full_hyper: Hyper | None = None, all_students: bool = False, previous: SweepResult | None = None,
) -> SweepResult:
    """Runs the study; with `previous`, resumes it: heads already trained with the same settings
    are reused, and full fine-tuning is recomputed only if its hyper-parameters changed."""
    out.mkdir(parents=True, exist_ok=True)
    session.states(sorted(frozen))  # one pass of the frozen trunk serves every depth
    full_settings = asdict(full_hyper or hyper)
    if previous is not None and previous.full is not None and previous.full_hyper == full_settings:
        full = previous.full
    else:
        full = session.full(full_hyper or hyper) if with_full else None
    done = {r["run"]: r for r in (previous.rows if previous else [])}
    rows: list[dict] = []
    teachers = []
    for f in sorted(frozen):
        name = f"f{f}"
        if name in done and trained_with(out / name, hyper):
            info, head = load_run(out / name)
            rows.append(done[name])
        else:
            info, head = session.partial(f, hyper, out / name)
            rows.append({"method": "partial", "run": name, "branch_layer": f, "head_layers": info.head_layers, "metrics": info.metrics, "seconds": info.hyper["seconds"]})
        teachers.append((info, head, name))
    reference = full["score"] if full else max(r["metrics"]["score"] for r in rows)
    # Distil the good teachers (within tolerance of the reference), or the best one if none is,
    # deepest branch point first. Unless `all_students`, stop once a student of the fewest layers
    # meets the target: every later one (deeper students of this teacher, students of the other
    # teachers) ranks below it in `choose`, so training it changes nothing.
    good = [t for t in teachers if t[0].metrics["score"] >= reference - tolerance] or [max(teachers, key=lambda t: t[0].metrics["score"])]
    for info, head, name in sorted(good, key=lambda t: -t[0].branch_layer):
        met = False
        for layers in sorted(students):
            if layers >= info.head_layers:
                continue
            student_dir = f"{name}-s{layers}"
            if student_dir in done and trained_with(out / student_dir, distill_hyper, weights):
                row = done[student_dir]
            else:
                s_info, _ = session.distill(head, info, layers, distill_hyper, weights, out / student_dir, teacher_dir=name)
                row = {"method": "distilled", "run": student_dir, "teacher": name, "branch_layer": info.branch_layer, "head_layers": layers, "metrics": s_info.metrics, "seconds": s_info.hyper["seconds"]}
            rows.append(row)
            met = met or (layers == min(students) and row["metrics"]["score"] >= reference - tolerance)
            if met and not all_students:
                break
        if met and not all_students:
            break
    candidates = [Candidate(out / r["run"], r["branch_layer"], r["head_layers"], r["metrics"]["score"], r["method"]) for r in rows]
    chosen, met = choose(candidates, reference, tolerance)
    chosen_row = next(r for r in rows if out / r["run"] == chosen.run)
    result = SweepResult(session.spec.name, session.spec.primary_metric, full, rows, chosen_row, met, tolerance, full_settings if full else None)
    result.save(out)
    plot_frozen_layers(result, session.checkpoint.config.num_hidden_layers, out / "frozen-layers.png")
    return result


def rechoose(result: SweepResult, out: Path) -> SweepResult:
    """Applies the current choice rule to a finished study (no training)."""
    reference = result.full["score"] if result.full else max(r["metrics"]["score"] for r in result.rows)
    candidates = [Candidate(out / r["run"], r["branch_layer"], r["head_layers"], r["metrics"]["score"], r["method"]) for r in result.rows]
    chosen, met = choose(candidates, reference, result.tolerance)
    result.chosen = next(r for r in result.rows if out / r["run"] == chosen.run)
    result.target_met = met
    result.save(out)
    return result


def plot_frozen_layers(result: SweepResult, total_layers: int, path: Path) -> None:
    """Dev score against the number of frozen layers: teachers as a line, students as markers."""
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    teachers = sorted((r["branch_layer"], r["metrics"]["score"]) for r in result.rows if r["method"] == "partial")
    xs, ys = [0] + [t[0] for t in teachers], ([result.full["score"]] if result.full else [None]) + [t[1] for t in teachers]
    points = [(x, y) for x, y in zip(xs, ys) if y is not None]
    axes.plot([p[0] for p in points], [p[1] for p in points], "o-", label=f"teacher: top {total_layers}-F layers fine-tuned")
    for layers, marker in ((1, "s"), (2, "^")):
        students = sorted((r["branch_layer"], r["metrics"]["score"]) for r in result.rows if r["method"] == "distilled" and r["head_layers"] == layers)
        if students:
            axes.plot([s[0] for s in students], [s[1] for s in students], marker, label=f"distilled {layers}-layer head")
    if result.full:
        axes.axhline(result.full["score"] - result.tolerance, color="grey", linestyle=":", label=f"full fine-tuning − {result.tolerance:g}")
    axes.set_xlabel("frozen layers F (0 = full fine-tuning)")
    axes.set_ylabel(f"dev {result.primary}")
    axes.set_title(f"{result.task}: dev score vs frozen layers")
    axes.set_xticks(range(0, total_layers))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def markdown_table(result: SweepResult) -> str:
    """The task's table for a report: every head tried, its dev metrics and its gap to full."""
    keys = [k for k in (result.full or result.rows[0]["metrics"]) if k != "score"]
    lines = [
        f"| head | frozen F | head layers | {' | '.join(keys)} | score | Δ full | train s |",
        "|" + " --- |" * (6 + len(keys)),
    ]
    full_score = result.full["score"] if result.full else None

    def fmt(values: dict[str, float]) -> str:
        return " | ".join(f"{values[k]:.1f}" for k in keys)

    if result.full:
        lines.append(f"| full fine-tuning | 0 | — | {fmt(result.full)} | {full_score:.1f} | — | — |")
    for row in result.rows:
        name = f"teacher {row['run']}" if row["method"] == "partial" else f"student {row['run']}"
        if row is result.chosen or row["run"] == result.chosen["run"]:
            name = f"**{name} (chosen)**"
        delta = f"{row['metrics']['score'] - full_score:+.1f}" if full_score is not None else "—"
        lines.append(f"| {name} | {row['branch_layer']} | {row['head_layers']} | {fmt(row['metrics'])} | {row['metrics']['score']:.1f} | {delta} | {row.get('seconds', 0):.0f} |")
    return "\n".join(lines)
