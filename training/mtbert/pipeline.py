"""Per-task workflows: partial fine-tuning sweeps, distillation, full fine-tuning, choice of head."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .checkpoint import BertConfig, Checkpoint, load_checkpoint
from .data import Example, TaskSpec, load_task_spec, read_examples, split_file
from .holdout import training_split
from .export import export_head
from .modeling import TaskHead
from .runs import HEAD_FILE, RunInfo, load_run, save_run
from .tokenization import WordPieceTokenizer
from .encoded import EncodedSet
from .kinds import KINDS
from .train import DevCheck, DistillWeights, FrozenStates, Hyper, StepLog, build_trunk, distill_head, full_finetune, head_logits, model_logits, served_head, train_head


@dataclass
class TaskSession:
    """One task's data, tokenized once, and the frozen trunk's cached states for it."""

    checkpoint: Checkpoint
    spec: TaskSpec
    train: EncodedSet
    dev: EncodedSet
    max_length: int
    crf: bool = False  # tagging: new heads (teachers, full fine-tuning) get a CRF layer
    int8_matmuls: bool = False  # heads train on (and are scored on) a trunk with int8 weight matmuls
    data_root: Path | None = None  # recorded in runs: `bundle add` calibrates the out-of-domain fallback from it
    calibration_share: float = 0.0  # share of train held out of training (`holdout`), recorded in runs
    _states: dict[str, FrozenStates] = field(default_factory=dict)

    @staticmethod
    def open(
        checkpoint: Checkpoint | str | Path, data_root: Path, task: str, max_train: int | None = None, max_length: int = 128, seed: int = 0,
        spec: TaskSpec | None = None, crf: bool = False, int8_matmuls: bool = False, calibration_share: float = 0.0,
    ) -> "TaskSession":
        """`calibration_share`: that share of the training split (`holdout`) is never trained on, so that
        `bundle add` can calibrate the head's own features on it (the sample `max_train` is drawn from the rest)."""
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(checkpoint)
        spec = spec or load_task_spec(data_root, task)
        if crf and not spec.output_kind.supports_crf:
            crf_kinds = ", ".join(k.name for k in KINDS if k.supports_crf)
            raise ValueError(f"--crf applies to {crf_kinds} tasks; {spec.name} is a {spec.kind} task")
        tokenizer = WordPieceTokenizer.from_file(checkpoint.vocab_path, max_length=max_length)
        train_examples, _ = training_split(split_file(data_root, task, "train"), spec, calibration_share, max_train, seed)
        train = EncodedSet.build(train_examples, tokenizer, spec)
        dev = EncodedSet.build(read_examples(split_file(data_root, task, "dev"), spec), tokenizer, spec)
        return TaskSession(checkpoint, spec, train, dev, max_length, crf, int8_matmuls, data_root=Path(data_root).resolve(), calibration_share=calibration_share)

    def states(self, layers: list[int]) -> tuple[FrozenStates, FrozenStates]:
        """Cached trunk states at `layers` for train and dev (computed once, reused by every head)."""
        missing = [layer for layer in layers if "train" not in self._states or layer not in self._states["train"].layers]
        if missing:
            wanted = sorted(set(layers) | set(self._states["train"].layers if "train" in self._states else []))
            trunk = build_trunk(self.checkpoint, max(wanted), self.int8_matmuls)
            self._states["train"] = FrozenStates(trunk, self.train, wanted, desc=f"{self.spec.name}: frozen states (train)")
            self._states["dev"] = FrozenStates(trunk, self.dev, wanted, desc=f"{self.spec.name}: frozen states (dev)")
        return self._states["train"], self._states["dev"]

    def _info(self, method: str, branch: int, layers: int, values: dict[str, float], hyper: Hyper, teacher: str | None = None, crf: bool = False, config: BertConfig | None = None) -> RunInfo:
        extra = {"crf": crf} if self.spec.output_kind.supports_crf else {}
        held = {"calibration_share": self.calibration_share} if self.calibration_share > 0 else {}
        return RunInfo(
            task=asdict(self.spec), method=method, branch_layer=branch, head_layers=layers,
            pretrained_path=str(self.checkpoint.path), pretrained_name=self.checkpoint.name, fingerprint=self.checkpoint.fingerprint,
            config=(config or self.checkpoint.config).to_dict(), metrics=values, teacher=teacher, hyper={**asdict(hyper), "max_length": self.max_length, "train_examples": len(self.train), **extra, **held},
            int8_matmuls=self.int8_matmuls, data_root=str(self.data_root) if self.data_root else None,
        )

    def _evaluate(self, head: TaskHead, frozen: int) -> dict[str, float]:
        _, dev_states = self.states([frozen])
        return self.spec.output_kind.evaluate(self.spec, head_logits(head, dev_states, frozen, len(self.dev)), self.dev, head.crf)

    def _dev_check(self, frozen: int) -> DevCheck:
        """Early stopping's check of a head on layer-F states: (dev score, dev loss)."""
        _, dev_states = self.states([frozen])
        kind = self.spec.output_kind

        def check(head: torch.nn.Module) -> tuple[float, float]:
            assert isinstance(head, TaskHead)
            logits = head_logits(head, dev_states, frozen, len(self.dev))
            return kind.evaluate(self.spec, logits, self.dev, head.crf)["score"], float(kind.loss(logits, self.dev.labels, head.crf))

        return check

    def _full_check(self, model: torch.nn.Module) -> tuple[float, float]:
        """Early stopping's check of full fine-tuning: (dev score, dev loss)."""
        kind = self.spec.output_kind
        logits = model_logits(model, self.dev)  # type: ignore[arg-type]
        crf = model.head.crf  # type: ignore[union-attr]
        return kind.evaluate(self.spec, logits, self.dev, crf)["score"], float(kind.loss(logits, self.dev.labels, crf))

    def partial(self, frozen: int, hyper: Hyper, out: Path | None = None) -> tuple[RunInfo, TaskHead]:
        """Fine-tunes the top L-F layers on cached layer-F states (the teacher)."""
        layers = self.checkpoint.config.num_hidden_layers
        if not 1 <= frozen <= layers:
            raise ValueError(f"--frozen must be in 1..{layers} for a {layers}-layer checkpoint, not {frozen} (F = {layers} trains the output layer alone)")
        train_states, _ = self.states([frozen])
        started = time.time()
        steps: list[StepLog] = []
        head = train_head(self.spec, self.checkpoint, frozen, train_states, self.train, hyper, f"{self.spec.name}: teacher F={frozen}", self.crf, self._dev_check(frozen), steps)
        info = self._info("partial", frozen, layers - frozen, self._evaluate(head, frozen), hyper, crf=self.crf)
        info.hyper.update({"seconds": round(time.time() - started, 1), "steps": asdict(steps[0])})
        if out is not None:
            write_run(out, info, head)
        return info, head

    def distill(
        self, teacher: TaskHead, teacher_info: RunInfo, student_layers: int, hyper: Hyper, weights: DistillWeights, out: Path | None = None,
        teacher_dir: str | None = None, width: float = 1.0,
    ) -> tuple[RunInfo, TaskHead]:
        frozen = teacher_info.branch_layer
        train_states, _ = self.states([frozen])
        started = time.time()
        thin = "" if width == 1 else f" at width {width:g}"
        steps: list[StepLog] = []
        desc = f"{self.spec.name}: student {student_layers}L{thin} from F={frozen}"
        student = distill_head(self.spec, teacher, frozen, student_layers, train_states, self.train, hyper, weights, desc, width, self._dev_check(frozen), steps)
        info = self._info("distilled", frozen, student_layers, self._evaluate(student, frozen), hyper, teacher_dir, crf=student.crf is not None, config=student.config)
        info.hyper.update({"distill": asdict(weights), "seconds": round(time.time() - started, 1), "width": width, "steps": asdict(steps[0])})
        if out is not None:
            write_run(out, info, student)
        return info, student

    def full(self, hyper: Hyper) -> dict[str, float]:  # noqa: D401
        """Dev metrics of full fine-tuning (every layer and the embeddings): the reference score."""
        model = full_finetune(self.spec, self.checkpoint, self.train, hyper, f"{self.spec.name}: full fine-tuning", self.crf, self._full_check)
        return self.spec.output_kind.evaluate(self.spec, model_logits(model, self.dev), self.dev, model.head.crf)


def served_metrics(checkpoint: Checkpoint, data_root: Path, run: Path, max_length: int = 128) -> dict[str, float]:
    """Dev metrics of a finished head on the trunk exactly as bundles serve it (`build_trunk`), which
    can differ from its training-time trunk (e.g. runs trained before int8 word embeddings)."""
    info, head, dev, logits = served_dev_logits(checkpoint, data_root, run, max_length)
    return info.spec.output_kind.evaluate(info.spec, logits, dev, head.crf)


def served_dev_logits(checkpoint: Checkpoint, data_root: Path, run: Path, max_length: int = 128) -> tuple[RunInfo, TaskHead, EncodedSet, torch.Tensor]:
    """A finished head's outputs on its dev split, as served (see `served_metrics`)."""
    info, head = load_run(run)
    spec = info.spec
    dev = read_examples(split_file(data_root, spec.name, "dev"), spec)
    served = served_head(head, info.int8_matmuls)
    encoded, logits = served_logits(checkpoint, info, served, dev, max_length)
    return info, served, encoded, logits


def served_logits(checkpoint: Checkpoint, info: RunInfo, served: TaskHead, examples: list[Example], max_length: int = 128) -> tuple[EncodedSet, torch.Tensor]:
    """The outputs of a head as served (`served_head`) on `examples`, through the trunk exactly as a bundle serves it."""
    tokenizer = WordPieceTokenizer.from_file(checkpoint.vocab_path, max_length=max_length)
    encoded = EncodedSet.build(examples, tokenizer, info.spec)
    states = FrozenStates(build_trunk(checkpoint, info.branch_layer, info.int8_matmuls), encoded, [info.branch_layer], desc=f"{info.spec.name}: served states")
    return encoded, head_logits(served, states, info.branch_layer, len(encoded))


def write_run(out: Path, info: RunInfo, head: TaskHead) -> None:
    save_run(out, info, head)
    export_head(head, out / HEAD_FILE, info.head_metadata)


@dataclass(frozen=True)
class Candidate:
    run: Path
    branch_layer: int
    head_layers: int
    score: float
    method: str
    cost: float  # serving cost per token, in layers (cost.head_cost)


def choose(candidates: list[Candidate], reference: float, tolerance: float, noise: float = 0.0) -> tuple[Candidate, bool]:
    """The cheapest head within `tolerance` points of `reference`: lowest serving cost first (a task
    pays for its own layers on every request), then the deepest branch point (the shared trunk
    runs to the deepest branch any task needs, so a deep branch never costs a task more), then the
    best score. When no head is within tolerance, falls back to the cheapest head within `noise`
    points (the dev score's standard error, `score_noise`) of the best-scoring one: heads the dev
    set cannot tell apart. The flag says whether the target was met."""
    def cheapest(pool: list[Candidate]) -> Candidate:
        return min(pool, key=lambda c: (round(c.cost, 9), -c.branch_layer, -c.score))

    good = [c for c in candidates if c.score >= reference - tolerance]
    if good:
        return cheapest(good), True
    best = max(c.score for c in candidates)
    return cheapest([c for c in candidates if c.score >= best - noise]), False


def score_noise(primary: str, score: float, dev_examples: int | None) -> float:
    """Standard error of an accuracy of `score` (%) on `dev_examples` examples, in points; 0 for other
    metrics (no closed form here) or an unknown dev size."""
    if primary != "accuracy" or not dev_examples:
        return 0.0
    p = min(max(score / 100, 0.0), 1.0)
    return 100 * math.sqrt(p * (1 - p) / dev_examples)


def set_threads(threads: int | None) -> None:
    """Some torch builds start with one thread; use every core unless told otherwise."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
