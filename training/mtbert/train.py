"""Partial fine-tuning, full fine-tuning and distillation of task heads.

The frozen part of BERT (embeddings + bottom F layers) is the same for every task and never
trained, so its hidden states are computed once per dataset (`FrozenStates`) and every head for
that task trains on the cached states: the costly bottom of the network runs once, not per epoch.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .checkpoint import Checkpoint
from .data import TaskSpec
from .encoded import EncodedSet
from .modeling import SingleTaskModel, TaskHead, Trunk, thin_layer
from .tokenization import Encoding

# CRF scores start at zero and must move by whole units within a short run: they get a higher
# learning rate than the encoder weights.
CRF_LR_SCALE = 100.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Hyper:
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    min_steps: int = 0  # at least this many optimisation steps: small data trains more epochs (`step_batches`)
    patience: int = 0  # early stopping: dev checks in a row without improvement before training stops (0: off)


# Hyper fields added after runs were first recorded, with the value that gives the earlier
# behaviour: a run.json or sweep.json that lacks one was trained as with this value.
ADDED_HYPER = {"min_steps": 0, "patience": 0}


def hyper_record(recorded: dict | None) -> dict | None:
    """A recorded `asdict(Hyper)` completed with the fields added since (`ADDED_HYPER`), to compare with today's."""
    return None if recorded is None else {**ADDED_HYPER, **recorded}


def pad_ids(encodings: list[Encoding]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(e.input_ids) for e in encodings)
    ids = torch.zeros(len(encodings), width, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(encodings):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        types[row, :n] = torch.tensor(e.token_type_ids)
        mask[row, :n] = 1
    return ids, mask, types


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(s.shape[0] for s in states)
    hidden = torch.zeros(len(states), width, states[0].shape[1])
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for row, s in enumerate(states):
        hidden[row, : s.shape[0]] = s
        mask[row, : s.shape[0]] = 1
    return hidden, mask


def length_batches(lengths: list[int], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Batches of similar length (little padding). With `rng`, shuffled for training:
    shuffle, sort within pools of 50 batches, cut, shuffle the batches."""
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches




class FrozenStates:
    """Hidden states of the frozen trunk at several layers, per example, without padding."""

    def __init__(self, trunk: Trunk, data: EncodedSet, layers: list[int], batch_size: int = 128, desc: str = "frozen states") -> None:
        self.layers = {layer: [torch.empty(0)] * len(data) for layer in layers}
        with torch.no_grad():
            for batch in tqdm(length_batches(data.lengths(), batch_size, None), desc=desc, leave=False):
                ids, mask, types = pad_ids([data.encodings[i] for i in batch])
                outputs = trunk(ids, mask, types)
                for row, index in enumerate(batch):
                    n = int(mask[row].sum())
                    for layer in layers:
                        self.layers[layer][index] = outputs[layer][row, :n].clone()

    def batch(self, layer: int, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_states([self.layers[layer][i] for i in indices])


def make_optimizer(params: list[nn.Parameter], hyper: Hyper, total_steps: int, fast: list[nn.Parameter] | None = None) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with linear warm-up and decay; `fast` parameters (a CRF's scores) get CRF_LR_SCALE x lr
    and no weight decay."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": hyper.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if fast:
        groups.append({"params": fast, "weight_decay": 0.0, "lr": hyper.lr * CRF_LR_SCALE})
    optimizer = torch.optim.AdamW(groups, lr=hyper.lr)
    warmup = max(1, int(total_steps * hyper.warmup))

    def schedule(step: int) -> float:
        return step / warmup if step < warmup else max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def update(module: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """One optimisation step, gradients clipped to norm 1."""
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
    optimizer.step()
    scheduler.step()


def _epoch_batches(data: EncodedSet, hyper: Hyper, rng: random.Random) -> list[list[int]]:
    """All training batches; a fractional epoch count truncates the last epoch."""
    batches: list[list[int]] = []
    for epoch in range(math.ceil(hyper.epochs)):
        epoch_batches = length_batches(data.lengths(), hyper.batch_size, rng)
        fraction = min(1.0, hyper.epochs - epoch)
        batches.extend(epoch_batches[: max(1, int(len(epoch_batches) * fraction))])
    return batches


# ---------------------------------------------------------------------------- the step schedule
# Dev checks of early stopping per run, at most (one per epoch when epochs are fewer).
DEV_CHECKS = 20
DevCheck = Callable[[nn.Module], tuple[float, float]]  # (dev score, dev loss) of the module being trained


def step_batches(data: EncodedSet, hyper: Hyper, rng: random.Random) -> list[list[int]]:
    """The training batches, one per optimisation step: `hyper.epochs` epochs, continued with
    further shuffled epochs up to `hyper.min_steps` steps when the epochs give fewer. A few dozen
    examples make a handful of batches per epoch, too few steps to train a head; a large dataset
    already has more steps than the minimum and trains exactly as its epochs say."""
    batches = _epoch_batches(data, hyper, rng)
    planned = max(len(batches), hyper.min_steps)
    while len(batches) < planned:
        batches.extend(length_batches(data.lengths(), hyper.batch_size, rng))
    return batches[:planned]


@dataclass
class StepLog:
    """What a training run did: steps planned and run, and the step whose weights it kept."""

    planned: int
    run: int
    kept: int


class EarlyStopping:
    """Checks the module on dev every `every` steps (and after the last), keeps the weights of the
    best check (a higher score, then a lower loss: on a small dev set the score ties early, while
    the loss still tells a surer head from a barely right one) and stops after `patience` checks
    in a row that did not beat it."""

    def __init__(self, module: nn.Module, check: DevCheck, every: int, patience: int) -> None:
        self.module, self.check, self.every, self.patience = module, check, every, patience
        self.best: tuple[float, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0
        self.stale = 0

    @staticmethod
    def check_interval(planned: int, per_epoch: int) -> int:
        """Steps between dev checks: an epoch, or 1/DEV_CHECKS of the run when that is longer."""
        return max(per_epoch, math.ceil(planned / DEV_CHECKS), 1)

    def after_step(self, step: int, last: int) -> bool:
        """Checks dev when due; says whether to stop."""
        if step % self.every and step != last:
            return False
        self.module.eval()
        with torch.no_grad():
            score, loss = self.check(self.module)
        self.module.train()
        score, loss = (-math.inf if math.isnan(score) else score), (math.inf if math.isnan(loss) else loss)  # e.g. a constant regression's correlation
        if self.best is None or score > self.best[0] or (score == self.best[0] and loss < self.best[1]):
            self.best, self.best_step, self.stale = (score, loss), step, 0
            self.best_state = copy.deepcopy(self.module.state_dict())
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self) -> None:
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)


def _groups(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(ordinary parameters, CRF parameters) of a head or a whole model, for make_optimizer."""
    def is_crf(name: str) -> bool:
        return name.startswith("crf.") or ".crf." in name

    named = list(module.named_parameters())
    return [p for n, p in named if not is_crf(n)], [p for n, p in named if is_crf(n)]


def _row(logits: torch.Tensor, mask: torch.Tensor, row: int, per_token: bool) -> torch.Tensor:
    """One example's output; per-token outputs lose the batch's padding (batches differ in width)."""
    return logits[row, : int(mask[row].sum())] if per_token else logits[row]


def _pad_rows(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stacks outputs; per-token rows are zero-padded to the longest one."""
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


def round_to_fp16(module: nn.Module) -> None:
    """Rounds weights to float16 precision in place: bundles store weights as float16, so the
    PyTorch model that is evaluated and compared against ONNX is exactly the one that is served."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())


def build_trunk(checkpoint: Checkpoint, depth: int, int8_matmuls: bool = False) -> Trunk:
    """The frozen trunk exactly as a bundle serves it: weights at float16 precision (a no-op for
    float16 checkpoints), the word embeddings in int8 with a scale per row and, for a bundle whose
    trunk has `int8Matmuls`, the encoder's weight matmuls in int8 (`RowwiseInt8Linear`), so heads
    train on, and parity references use, the served hidden states."""
    trunk = Trunk(checkpoint.config, depth)
    trunk.load_pretrained(checkpoint.weights)
    round_to_fp16(trunk)
    trunk.embeddings.quantize_words_int8()
    if int8_matmuls:
        trunk.quantize_matmuls_int8()
    return trunk.eval()


def served_head(head: TaskHead, int8_matmuls: bool) -> TaskHead:
    """A finished head exactly as a bundle serves it: with an int8 trunk, its token-level layers in
    int8 too (`TaskHead.quantize_token_layers_int8`), on a copy; otherwise the head itself."""
    if not int8_matmuls:
        return head
    served = copy.deepcopy(head)
    served.quantize_token_layers_int8()
    return served.eval()


# ---------------------------------------------------------------------------- the training loop
BatchLoss = Callable[[list[int]], torch.Tensor]


def train_loop(module: nn.Module, train: EncodedSet, hyper: Hyper, batch_loss: BatchLoss, desc: str, check: DevCheck | None = None, steps: list[StepLog] | None = None) -> StepLog:
    """The one optimisation loop of partial fine-tuning, distillation and full fine-tuning: seeded
    length-bucketed batches (`step_batches`: `hyper.epochs`, at least `hyper.min_steps` steps),
    AdamW with warm-up and decay over them (a CRF's scores faster), one step per batch on
    `batch_loss(batch indices)`; with `check` and `hyper.patience`, early stopping on dev
    (`EarlyStopping`: the best check's weights are kept). Leaves `module` in eval mode; the StepLog
    is returned and appended to `steps` when given.
    Build the module after `seed_everything`: its initialisation and the loop draw from the same seed."""
    rng = random.Random(hyper.seed)
    batches = step_batches(train, hyper, rng)
    params, crf_params = _groups(module)
    optimizer, scheduler = make_optimizer(params, hyper, len(batches), crf_params)
    stopping = None
    if check is not None and hyper.patience > 0:
        every = EarlyStopping.check_interval(len(batches), math.ceil(len(train) / hyper.batch_size))
        stopping = EarlyStopping(module, check, every, hyper.patience)
    module.train()
    step = 0
    for step, batch in enumerate(tqdm(batches, desc=desc, leave=False), 1):
        update(module, batch_loss(batch), optimizer, scheduler)
        if stopping is not None and stopping.after_step(step, len(batches)):
            break
    if stopping is not None:
        stopping.restore()
    module.eval()
    log = StepLog(len(batches), step, stopping.best_step if stopping is not None else step)
    if steps is not None:
        steps.append(log)
    return log


# ---------------------------------------------------------------------------- heads on cached states
def head_logits(head: TaskHead, states: FrozenStates, layer: int, n: int, batch_size: int = 128) -> torch.Tensor:
    head.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * n
    lengths = [states.layers[layer][i].shape[0] for i in range(n)]
    with torch.no_grad():
        for batch in length_batches(lengths, batch_size, None):
            hidden, mask = states.batch(layer, batch)
            logits = head(hidden, mask)
            for row, index in enumerate(batch):
                out[index] = _row(logits, mask, row, head.kind.per_token)
    return _pad_rows(out)


def train_head(
    spec: TaskSpec, checkpoint: Checkpoint, frozen: int, train_states: FrozenStates, train: EncodedSet, hyper: Hyper, desc: str, crf: bool = False,
    check: DevCheck | None = None, steps: list[StepLog] | None = None,
) -> TaskHead:
    """Partial fine-tuning: a head holding pretrained layers F+1..L, trained on cached layer-F states
    (`check`, `steps`: early stopping and the step log, see `train_loop`)."""
    seed_everything(hyper.seed)
    config = checkpoint.config
    head = TaskHead(config, config.num_hidden_layers - frozen, spec.output_kind, spec.num_outputs, crf=crf)
    head.init_layers_from(checkpoint.weights, frozen)

    def batch_loss(batch: list[int]) -> torch.Tensor:
        hidden, mask = train_states.batch(frozen, batch)
        return spec.output_kind.loss(head(hidden, mask), train.labels[batch], head.crf)

    train_loop(head, train, hyper, batch_loss, desc, check, steps)
    round_to_fp16(head)
    return head


@dataclass(frozen=True)
class DistillWeights:
    """Loss weights: soft labels at `temperature`, hidden-state MSE, and the hard labels."""

    soft: float = 1.0
    hidden: float = 1.0
    hard: float = 0.5
    temperature: float = 2.0


def student_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer (0-based) each student layer imitates: evenly spaced, last to last."""
    return [(j + 1) * teacher_layers // student_layers - 1 for j in range(student_layers)]


def distill_head(
    spec: TaskSpec,
    teacher: TaskHead,
    frozen: int,
    student_layers: int,
    train_states: FrozenStates,
    train: EncodedSet,
    hyper: Hyper,
    weights: DistillWeights,
    desc: str,
    width: float = 1.0,
    check: DevCheck | None = None,
    steps: list[StepLog] | None = None,
) -> TaskHead:
    """Compresses a teacher's k layers into `student_layers` ≤ k layers `width` times as wide inside
    (fewer attention heads and feed-forward units, `BertConfig.thinned`), both reading layer-F
    states; a student with as many layers as its teacher must be thinner."""
    k = len(teacher.layer)
    if not 0 < width <= 1:
        raise ValueError(f"a student's width must be in (0, 1], not {width}")
    if not 1 <= student_layers <= k or (student_layers == k and width == 1):
        raise ValueError(f"a student compresses its {k}-layer teacher: 1..{k - 1} layers, or up to {k} thinner ones (width < 1), not {student_layers} at width {width:g}")
    seed_everything(hyper.seed)
    config = teacher.config.thinned(width)
    student = TaskHead(config, student_layers, spec.output_kind, spec.num_outputs, crf=teacher.crf is not None)
    # Initialise from evenly spaced teacher layers (the first one reads the same layer-F input),
    # narrowed to their most important heads and units when the student is thinner.
    for j, layer in enumerate(student.layer):
        source = teacher.layer[j * k // student_layers]
        layer.load_state_dict((source if width == 1 else thin_layer(source, config)).state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    if student.crf is not None and teacher.crf is not None:
        student.crf.load_state_dict(teacher.crf.state_dict())
    targets = student_layer_map(k, student_layers)
    teacher.eval()

    def batch_loss(batch: list[int]) -> torch.Tensor:
        hidden, mask = train_states.batch(frozen, batch)
        return distillation_loss(spec, teacher, student, hidden, mask, train.labels[batch], weights, targets)

    train_loop(student, train, hyper, batch_loss, desc, check, steps)
    round_to_fp16(student)
    return student


def distillation_loss(
    spec: TaskSpec, teacher: TaskHead, student: TaskHead, hidden: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, weights: DistillWeights, targets: list[int]
) -> torch.Tensor:
    """The student's loss on one batch: soft labels at the weights' temperature, the MSE of each
    student layer's states to its teacher layer's (`targets`, padding left out), and the hard labels."""
    with torch.no_grad():
        teacher_hidden = teacher.forward_layers(hidden, mask)
        teacher_logits = teacher.logits_from(teacher_hidden[-1])
    student_hidden = student.forward_layers(hidden, mask)
    logits = student.logits_from(student_hidden[-1])
    kind = spec.output_kind
    soft = kind.soft_loss(logits, teacher_logits, labels, weights.temperature)
    keep = mask.unsqueeze(-1).to(torch.float32)
    hidden_loss = sum(
        (((s - teacher_hidden[m]) ** 2) * keep).sum() / (keep.sum() * s.shape[-1]) for s, m in zip(student_hidden, targets)
    ) / len(targets)
    return weights.soft * soft + weights.hidden * hidden_loss + weights.hard * kind.loss(logits, labels, student.crf)


# ---------------------------------------------------------------------------- full fine-tuning
def model_logits(model: SingleTaskModel, data: EncodedSet, batch_size: int = 128) -> torch.Tensor:
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(data)
    with torch.no_grad():
        for batch in length_batches(data.lengths(), batch_size, None):
            ids, mask, types = pad_ids([data.encodings[i] for i in batch])
            logits = model(ids, mask, types)
            for row, index in enumerate(batch):
                out[index] = _row(logits, mask, row, model.head.kind.per_token)
    return _pad_rows(out)


def full_finetune(
    spec: TaskSpec, checkpoint: Checkpoint, train: EncodedSet, hyper: Hyper, desc: str, crf: bool = False, check: DevCheck | None = None, steps: list[StepLog] | None = None
) -> SingleTaskModel:
    """The reference: every layer and the embeddings trained for this task alone."""
    seed_everything(hyper.seed)
    config = checkpoint.config
    trunk = Trunk(config, 0)
    trunk.load_pretrained(checkpoint.weights)
    head = TaskHead(config, config.num_hidden_layers, spec.output_kind, spec.num_outputs, crf=crf)
    head.init_layers_from(checkpoint.weights, 0)
    model = SingleTaskModel(trunk, 0, head)

    def batch_loss(batch: list[int]) -> torch.Tensor:
        ids, mask, types = pad_ids([train.encodings[i] for i in batch])
        return spec.output_kind.loss(model(ids, mask, types), train.labels[batch], head.crf)

    train_loop(model, train, hyper, batch_loss, desc, check, steps)
    return model
