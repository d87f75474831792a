"""A task's whole study: full fine-tuning, teachers at several frozen depths, students of the
good teachers, the choice of head, and the frozen-layers plot."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .checkpoint import BertConfig  # noqa: E402
from .cost import head_cost  # noqa: E402
from .kinds import OutputKind, kind_named  # noqa: E402
from .kinds.classification import KIND as CLASSIFICATION  # noqa: E402
from .pipeline import Candidate, TaskSession, choose, score_noise  # noqa: E402
from .runs import RUN_FILE, load_run, read_info  # noqa: E402
from .train import DistillWeights, Hyper, hyper_record  # noqa: E402

SWEEP_FILE = "sweep.json"
# Full fine-tuning's result, written as soon as it is known: the costliest stage of a study is never
# repeated by a resumed build that was stopped before the study finished.
FULL_FILE = "full.json"
# Tokens per utterance the serving cost of a head is weighed at (cost.head_cost).
MEAN_TOKENS = 16.0


@dataclass(frozen=True)
class StudySettings:
    """What a task's study tries and how it trains each head (a recipe task's settings, or `mtbert sweep`'s options)."""

    frozen: tuple[int, ...]  # frozen-layer counts F of the teachers (partial fine-tuning)
    students: tuple[int, ...]  # student depths, distilled from the good teachers
    hyper: Hyper  # teachers
    distill_hyper: Hyper  # students
    weights: DistillWeights
    full_hyper: Hyper | None = None  # full fine-tuning (None: the teachers' `hyper`)
    tolerance: float = 1.0  # points below the reference score a chosen head may be
    with_full: bool = True  # run full fine-tuning (else heads are compared with the best teacher)
    all_students: bool = False  # distil every good teacher, not only until a student meets the target
    widths: tuple[float, ...] = ()  # student widths tried besides full width (< 1: thinner layers)
    mean_tokens: float = MEAN_TOKENS  # tokens per utterance the serving cost is weighed at
    # A full fine-tuning reference trained elsewhere (`mtbert reference`, references/<task>.json):
    # its best dev epoch is the study's full fine-tuning, which is then not run (`kept_reference`).
    kept_reference: dict | None = None

    @property
    def reference_hyper(self) -> Hyper:
        return self.full_hyper or self.hyper

    def full_settings(self) -> dict:
        """What the study's full fine-tuning score was trained with (a kept reference's settings)."""
        if self.kept_reference is not None:
            return {**self.kept_reference["settings"], "bestEpoch": self.kept_reference["bestEpoch"], "source": "mtbert reference"}
        return asdict(self.reference_hyper)


def full_matches(recorded: dict | None, settings: StudySettings) -> bool:
    """Whether a study's recorded full fine-tuning settings are today's (a kept reference's as written;
    the toolkit's own completed with the training fields added since, `hyper_record`)."""
    expected = settings.full_settings()
    return recorded == expected if settings.kept_reference is not None else hyper_record(recorded) == expected


def student_run(teacher: str, layers: int, width: float) -> str:
    """Run folder name of a student: f3-s1 (full width), f3-s1-w25 (a quarter as wide inside)."""
    return f"{teacher}-s{layers}" + ("" if width == 1 else f"-w{round(width * 100)}")


def row_cost(row: dict, kind: OutputKind, base: BertConfig, mean_tokens: float) -> float:
    """Serving cost per token of the head a sweep row describes (rows without a width are full width)."""
    return head_cost(kind, row["head_layers"], base.thinned(row.get("width", 1.0)), base, mean_tokens)


def reference_score(full: dict | None, rows: list[dict]) -> float:
    """The score heads are compared to: the better of full fine-tuning's and the best head's. Full
    fine-tuning is the method's reference, but where its compute was capped (fewer epochs or
    examples than the heads get) a head can beat it; a head is then held to the best score this
    study reached, never to an under-trained reference."""
    best = max(r["metrics"]["score"] for r in rows)
    return max(full["score"], best) if full else best


def candidates(rows: list[dict], out: Path, kind: OutputKind, base: BertConfig, mean_tokens: float) -> list[Candidate]:
    return [Candidate(out / r["run"], r["branch_layer"], r["head_layers"], r["metrics"]["score"], r["method"], row_cost(r, kind, base, mean_tokens)) for r in rows]


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
    widths: list[float] | None = None  # student widths tried besides full width
    dev_examples: int | None = None  # size of the dev set the scores come from
    stage_seconds: dict[str, float] | None = None  # wall seconds of the frozen-states pass and of full fine-tuning
    kind: str = CLASSIFICATION.name  # the task's head kind (`kinds`); studies saved without it read it from their runs

    def reference(self) -> float:
        return reference_score(self.full, self.rows)

    @property
    def output_kind(self) -> OutputKind:
        return kind_named(self.kind)

    def noise(self) -> float:
        """Standard error of the best dev score, for `choose`'s fallback."""
        return score_noise(self.primary, max(r["metrics"]["score"] for r in self.rows), self.dev_examples)

    def save(self, folder: Path) -> None:
        (folder / SWEEP_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @staticmethod
    def load(folder: Path) -> "SweepResult":
        raw = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
        if "kind" not in raw:  # saved before studies recorded their kind: every run of the study knows it
            run = next((folder / r["run"] for r in raw["rows"] if (folder / r["run"] / RUN_FILE).is_file()), None)
            if run is None:
                raise FileNotFoundError(f"{folder / SWEEP_FILE}: no kind recorded and none of its runs left to read it from")
            raw["kind"] = read_info(run).spec.kind
        return SweepResult(**raw)


def trained_with(run: Path, hyper: Hyper, weights: DistillWeights | None = None) -> bool:
    """Whether the run in folder `run` exists and was trained with these settings (a resumed study
    retrains a head whose settings changed, e.g. more distillation epochs)."""
    if not (run / RUN_FILE).is_file():
        return False
    recorded = hyper_record(json.loads((run / RUN_FILE).read_text(encoding="utf-8"))["hyper"])
    same = all(recorded.get(k) == v for k, v in asdict(hyper).items())
    return same and (weights is None or recorded.get("distill") == asdict(weights))


def study_is_current(previous: SweepResult, out: Path, settings: StudySettings) -> bool:
    """Whether every head of a finished study was trained with the current settings, and it tried the same student widths."""
    if previous.full is not None and not full_matches(previous.full_hyper, settings):
        return False
    if sorted(previous.widths or []) != sorted(settings.widths):
        return False
    return all(
        trained_with(out / r["run"], settings.hyper) if r["method"] == "partial" else trained_with(out / r["run"], settings.distill_hyper, settings.weights)
        for r in previous.rows
    )


def run_sweep(session: TaskSession, out: Path, settings: StudySettings, previous: SweepResult | None = None) -> SweepResult:
    """Runs the study; with `previous`, resumes it: heads already trained with the same settings
    are reused, and full fine-tuning is recomputed only if its hyper-parameters changed. Students
    are distilled at full width and at each of `settings.widths` (< 1: thinner layers)."""
    frozen, students, hyper, distill_hyper, weights = settings.frozen, settings.students, settings.hyper, settings.distill_hyper, settings.weights
    tolerance, widths, mean_tokens = settings.tolerance, list(settings.widths), settings.mean_tokens
    out.mkdir(parents=True, exist_ok=True)
    stages = dict(previous.stage_seconds or {}) if previous else {}
    started = time.time()
    session.states(sorted(frozen))  # one pass of the frozen trunk serves every depth
    stages["frozen_states"] = round(time.time() - started, 1)
    kind, base = session.spec.output_kind, session.checkpoint.config
    full_settings = settings.full_settings()
    full = _full_reference(session, out, settings, previous, stages)
    done = {r["run"]: r for r in (previous.rows if previous else [])}
    rows, teachers = _train_teachers(session, out, sorted(frozen), hyper, done)
    reference = reference_score(full, rows)
    # Distil the good teachers (within tolerance of the reference), or the best one if none is.
    # Students are trained cheapest first (serving cost, then the deeper branch point: the order
    # `choose` ranks them in); unless `all_students`, the study stops at the first student no
    # cheaper than a head already meeting the target, since it and every later one rank below it.
    good = [t for t in teachers if t[0].metrics["score"] >= reference - tolerance] or [max(teachers, key=lambda t: t[0].metrics["score"])]
    plan = [
        (info, head, name, layers, width)
        for info, head, name in good
        for layers in students
        for width in sorted({1.0, *widths}, reverse=True)
        if layers < info.head_layers or (layers == info.head_layers and width < 1)
    ]

    def rank(branch: int, layers: int, width: float) -> tuple[float, int]:
        return round(head_cost(kind, layers, base.thinned(width), base, mean_tokens), 9), -branch

    plan.sort(key=lambda p: rank(p[0].branch_layer, p[3], p[4]))
    met = [rank(r["branch_layer"], r["head_layers"], 1.0) for r in rows if r["metrics"]["score"] >= reference - tolerance]
    for info, head, name, layers, width in plan:
        if met and not settings.all_students and min(met) <= rank(info.branch_layer, layers, width):
            break
        student_dir = student_run(name, layers, width)
        if trained_with(out / student_dir, distill_hyper, weights) and read_info(out / student_dir).hyper.get("width", 1.0) == width:
            s_info = read_info(out / student_dir)
            row = done.get(student_dir) or {"method": "distilled", "run": student_dir, "teacher": name, "branch_layer": info.branch_layer, "head_layers": layers, "width": width, "metrics": s_info.metrics, "seconds": s_info.hyper.get("seconds", 0.0)}
        else:
            s_info, _ = session.distill(head, info, layers, distill_hyper, weights, out / student_dir, teacher_dir=name, width=width)
            row = {"method": "distilled", "run": student_dir, "teacher": name, "branch_layer": info.branch_layer, "head_layers": layers, "width": width, "metrics": s_info.metrics, "seconds": s_info.hyper["seconds"]}
        rows.append(row)
        if row["metrics"]["score"] >= reference - tolerance:
            met.append(rank(info.branch_layer, layers, width))
    result = SweepResult(session.spec.name, session.spec.primary_metric, full, rows, rows[0], False, tolerance, full_settings if full else None, sorted(widths), len(session.dev), stages, kind.name)
    chosen, result.target_met = choose(candidates(rows, out, kind, base, mean_tokens), reference, tolerance, result.noise())
    result.chosen = next(r for r in rows if out / r["run"] == chosen.run)
    result.save(out)
    plot_frozen_layers(result, session.checkpoint.config.num_hidden_layers, out / "frozen-layers.png")
    return result


def _full_reference(session: TaskSession, out: Path, settings: StudySettings, previous: SweepResult | None, stages: dict[str, float]) -> dict[str, float] | None:
    """Full fine-tuning's metrics: a kept reference, the previous study's, an unfinished study's, or a new run (timed in `stages`)."""
    full_settings = settings.full_settings()
    kept = _kept_full(out, full_settings)
    if settings.kept_reference is not None:
        full = settings.kept_reference["best"]
        stages["full_fine_tuning"] = settings.kept_reference.get("seconds", 0.0)  # as measured where it was trained
    elif previous is not None and previous.full is not None and full_matches(previous.full_hyper, settings):
        full = previous.full
    elif kept is not None:
        full, stages["full_fine_tuning"] = kept
    elif settings.with_full:
        started = time.time()
        full = session.full(settings.reference_hyper)
        stages["full_fine_tuning"] = round(time.time() - started, 1)
        (out / FULL_FILE).write_text(json.dumps({"hyper": full_settings, "metrics": full, "seconds": stages["full_fine_tuning"]}, indent=2), encoding="utf-8")
    else:
        full = None
    return full


def _train_teachers(session: TaskSession, out: Path, frozen: list[int], hyper: Hyper, done: dict[str, dict]) -> tuple[list[dict], list[tuple]]:
    """One partially fine-tuned head per frozen depth (kept from an earlier build when trained with `hyper`): the study's rows and the teachers."""
    rows: list[dict] = []
    teachers = []
    for f in frozen:
        name = f"f{f}"
        if trained_with(out / name, hyper):  # kept from an earlier build, finished or not
            info, head = load_run(out / name)
            rows.append(done.get(name) or {"method": "partial", "run": name, "branch_layer": f, "head_layers": info.head_layers, "metrics": info.metrics, "seconds": info.hyper.get("seconds", 0.0)})
        else:
            info, head = session.partial(f, hyper, out / name)
            rows.append({"method": "partial", "run": name, "branch_layer": f, "head_layers": info.head_layers, "metrics": info.metrics, "seconds": info.hyper["seconds"]})
        teachers.append((info, head, name))
    return rows, teachers


def _kept_full(out: Path, settings: dict) -> tuple[dict[str, float], float] | None:
    """Full fine-tuning's metrics and seconds from an earlier, unfinished study with the same settings."""
    path = out / FULL_FILE
    if not path.is_file():
        return None
    kept = json.loads(path.read_text(encoding="utf-8"))
    return (kept["metrics"], kept.get("seconds", 0.0)) if hyper_record(kept.get("hyper")) == settings else None


def rechoose(result: SweepResult, out: Path, base: BertConfig, mean_tokens: float = MEAN_TOKENS, max_branch: int | None = None) -> SweepResult:
    """Applies the current choice rule to a finished study (no training), among the heads that
    branch at or below `max_branch` when given (the trunk depth a whole bundle settled on)."""
    rows = [r for r in result.rows if max_branch is None or r["branch_layer"] <= max_branch]
    if not rows:
        raise ValueError(f"{result.task}: no head branches at or below layer {max_branch}")
    chosen, met = choose(candidates(rows, out, result.output_kind, base, mean_tokens), result.reference(), result.tolerance, result.noise())
    result.chosen = next(r for r in rows if out / r["run"] == chosen.run)
    result.target_met = met
    result.save(out)
    return result


def choose_trunk_depth(studies: dict[str, tuple[SweepResult, Path]], base: BertConfig, mean_tokens: float = MEAN_TOKENS) -> int:
    """The trunk depth that makes a whole bundle cheapest. Every task's heads share the trunk, which
    runs to the deepest branch point any of them reads, so one task's deep head makes every
    request pay for the layers below it. For each depth D, each task takes the cheapest head that
    branches at or below D and meets its target (a task whose target no head meets takes its best
    such head; a depth where a task that can meet its target cannot is ruled out); the bundle
    costs D + the sum of the heads. Returns the cheapest D (the deeper one on a tie).
    `studies`: task → (finished study, its run folder)."""
    def tolerance_met(result: SweepResult, rows: list[dict]) -> bool:
        return any(r["metrics"]["score"] >= result.reference() - result.tolerance for r in rows)

    best: tuple[float, int] | None = None
    for depth in sorted({r["branch_layer"] for result, _ in studies.values() for r in result.rows}):
        total = float(depth)
        for result, out in studies.values():
            rows = [r for r in result.rows if r["branch_layer"] <= depth]
            if not rows or (tolerance_met(result, result.rows) and not tolerance_met(result, rows)):
                break
            total += choose(candidates(rows, out, result.output_kind, base, mean_tokens), result.reference(), result.tolerance, result.noise())[0].cost
        else:
            if best is None or round(total, 9) <= round(best[0], 9):
                best = (total, depth)
    if best is None:
        raise ValueError("no trunk depth lets every task meet the target it can meet")
    return best[1]


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
        f"| head | frozen F | head layers | width | {' | '.join(keys)} | score | Δ full | train s |",
        "|" + " --- |" * (7 + len(keys)),
    ]
    full_score = result.full["score"] if result.full else None

    def fmt(values: dict[str, float]) -> str:
        return " | ".join(f"{values[k]:.1f}" for k in keys)

    if result.full:
        lines.append(f"| full fine-tuning | 0 | — | 1 | {fmt(result.full)} | {full_score:.1f} | — | — |")
    for row in result.rows:
        name = f"teacher {row['run']}" if row["method"] == "partial" else f"student {row['run']}"
        if row is result.chosen or row["run"] == result.chosen["run"]:
            name = f"**{name} (chosen)**"
        delta = f"{row['metrics']['score'] - full_score:+.1f}" if full_score is not None else "—"
        lines.append(f"| {name} | {row['branch_layer']} | {row['head_layers']} | {row.get('width', 1.0):g} | {fmt(row['metrics'])} | {row['metrics']['score']:.1f} | {delta} | {row.get('seconds', 0):.0f} |")
    return "\n".join(lines)
