"""Full fine-tuning references trained as published work trains them (issue 31): every layer and the
embeddings, AdamW with a linear warm-up and linear decay, a few whole epochs, dev scored after every
epoch and the best epoch kept.

Long runs are resumable: a run folder (outside the repository) holds a checkpoint of the model, the
optimizer, the scheduler, the random state and the position (epoch, step), written every
`checkpoint_every` steps and at each epoch's end; running the same command again continues from it,
and a finished task is skipped. The small result (settings, per-epoch dev scores, best epoch, times,
machine) is one JSON file per task, committed (`training/references/<task>.json`), which a recipe
reads as its full fine-tuning reference (`recipe_file.reference_file`). Weights stay in the run folder.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

import torch
from tqdm import tqdm

from .checkpoint import Checkpoint
from .modeling import SingleTaskModel, TaskHead, Trunk
from .pipeline import TaskSession
from .train import Hyper, _groups, length_batches, make_optimizer, model_logits, pad_ids, seed_everything, update

if TYPE_CHECKING:
    import argparse

STATE_FILE, BEST_FILE, RESULT_FILE, LOG_FILE = "state.pt", "best.pt", "result.json", "log.txt"


@dataclass(frozen=True)
class ReferenceSettings:
    """How a reference is trained; a run folder resumes only with the settings it was started with."""

    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    warmup: float = 0.1  # fraction of all steps the learning rate rises over, from 0 to `lr`
    weight_decay: float = 0.01
    seed: int = 0
    crf: bool = False  # tagging: a CRF layer on the outputs (its scores learn CRF_LR_SCALE x faster)
    max_train: int | None = None  # a seeded sample of the training split (None: all of it)

    def hyper(self) -> Hyper:
        return Hyper(epochs=float(self.epochs), batch_size=self.batch_size, lr=self.lr, warmup=self.warmup, weight_decay=self.weight_decay, seed=self.seed)

    def to_json(self) -> dict:
        """camelCase, as the recipe and the manifest write keys."""
        return {
            "epochs": self.epochs, "lr": self.lr, "batchSize": self.batch_size, "maxLength": self.max_length, "warmup": self.warmup,
            "weightDecay": self.weight_decay, "seed": self.seed, "crf": self.crf, "maxTrain": self.max_train,
            "schedule": "linear warm-up, linear decay to 0", "optimizer": "AdamW, gradients clipped to norm 1",
        }


def full_model(session: TaskSession, seed: int) -> SingleTaskModel:
    """The pretrained BERT, every layer trainable, with a fresh output layer (and CRF) for the task."""
    seed_everything(seed)
    checkpoint: Checkpoint = session.checkpoint
    config = checkpoint.config
    trunk = Trunk(config, 0)
    trunk.load_pretrained(checkpoint.weights)
    head = TaskHead(config, config.num_hidden_layers, session.spec.output_kind, session.spec.num_outputs, crf=session.crf)
    head.init_layers_from(checkpoint.weights, 0)
    return SingleTaskModel(trunk, 0, head)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's batches from a stream of its own, so a resumed run draws the same ones."""
    return length_batches(lengths, batch_size, random.Random(f"{seed}-epoch-{epoch}"))


def reference_optimizer(model: SingleTaskModel, settings: ReferenceSettings, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no decay on biases and norms), the learning rate rising linearly from 0 over the first
    `warmup` of all steps, then falling linearly to 0 at the last one (`train.make_optimizer`)."""
    params, crf_params = _groups(model)
    return make_optimizer(params, settings.hyper(), steps_per_epoch * settings.epochs, crf_params)


def best_epoch(history: list[dict]) -> int:
    """The 1-based epoch with the highest dev score (the earliest on a tie)."""
    return max(range(len(history)), key=lambda i: (history[i]["metrics"]["score"], -i)) + 1


def machine() -> dict:
    """Where the times were measured."""
    processor = platform.processor()
    try:
        processor = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"processor": processor or platform.machine(), "cpus": os.cpu_count(), "torchThreads": torch.get_num_threads(), "torch": torch.__version__, "device": "cpu"}


class Interrupted(Exception):
    """Raised by a test's `stop_after` to simulate a run killed mid-epoch."""


def _save_atomic(obj: object, path: Path) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def _log(folder: Path, line: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with open(folder / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(f"{stamp} {line}\n")
    tqdm.write(f"{stamp} {line}")


def train_reference(session: TaskSession, settings: ReferenceSettings, folder: Path, checkpoint_every: int = 200, stop_after: int | None = None) -> dict:
    """Trains (or resumes, or skips when finished) the task's reference in `folder`; returns the result.
    `stop_after` (tests): raise `Interrupted` after that many steps of this call, as a kill would."""
    folder.mkdir(parents=True, exist_ok=True)
    task = session.spec.name
    if (finished := _finished(folder, settings, task)) is not None:
        return finished
    model = full_model(session, settings.seed)
    lengths = session.train.lengths()
    steps_per_epoch = len(epoch_batches(lengths, settings.batch_size, settings.seed, 0))
    optimizer, scheduler = reference_optimizer(model, settings, steps_per_epoch)
    position = {"epoch": 0, "step": 0, "epochSeconds": 0.0, "history": []}
    if (folder / STATE_FILE).is_file():
        position = _restore(folder / STATE_FILE, settings, model, optimizer, scheduler)
        _log(folder, f"{task}: resumed at epoch {position['epoch'] + 1}, step {position['step']}/{steps_per_epoch}")
    else:
        _log(folder, f"{task}: started, {len(session.train)} train / {len(session.dev)} dev examples, {steps_per_epoch} steps per epoch, {json.dumps(settings.to_json())}")
    done_now = 0

    def save() -> None:
        state = {
            "settings": settings.to_json(), "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "torchRng": torch.get_rng_state(), "position": position,
        }
        _save_atomic(state, folder / STATE_FILE)

    while position["epoch"] < settings.epochs:
        epoch = position["epoch"]
        batches = epoch_batches(lengths, settings.batch_size, settings.seed, epoch)
        started = time.time() - position["epochSeconds"]
        model.train()
        progress = tqdm(total=len(batches), initial=position["step"], desc=f"{task}: epoch {epoch + 1}/{settings.epochs}", dynamic_ncols=True, mininterval=10)
        for batch in batches[position["step"] :]:
            ids, mask, types = pad_ids([session.train.encodings[i] for i in batch])
            loss = session.spec.output_kind.loss(model(ids, mask, types), session.train.labels[batch], model.head.crf)
            update(model, loss, optimizer, scheduler)
            position["step"] += 1
            done_now += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if position["step"] % checkpoint_every == 0 and position["step"] < len(batches):
                position["epochSeconds"] = time.time() - started
                save()
            if stop_after is not None and done_now >= stop_after:
                raise Interrupted(f"stopped after {done_now} steps")
        progress.close()
        train_seconds = time.time() - started
        metrics = session.spec.output_kind.evaluate(session.spec, model_logits(model, session.dev), session.dev, model.head.crf)
        entry = {"epoch": epoch + 1, "metrics": {k: round(v, 4) for k, v in metrics.items()}, "trainSeconds": round(train_seconds, 1), "evalSeconds": round(time.time() - started - train_seconds, 1)}
        position["history"].append(entry)
        if best_epoch(position["history"]) == epoch + 1:
            _save_atomic(model.state_dict(), folder / BEST_FILE)
        position.update(epoch=epoch + 1, step=0, epochSeconds=0.0)
        save()
        _log(folder, f"{task}: epoch {epoch + 1}/{settings.epochs}: dev {json.dumps(entry['metrics'])}, {entry['trainSeconds']:.0f}s training, {entry['evalSeconds']:.0f}s dev")
    result = _result(session, settings, position["history"], steps_per_epoch)
    (folder / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _log(folder, f"{task}: finished: best epoch {result['bestEpoch']}, dev {json.dumps(result['best'])}")
    return result


def _finished(folder: Path, settings: ReferenceSettings, task: str) -> dict | None:
    """The result of a reference finished earlier in `folder` with these settings (None: not finished); other settings are an error."""
    if not (folder / RESULT_FILE).is_file():
        return None
    result = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    if result["settings"] == settings.to_json():
        _log(folder, f"{task}: finished earlier (best epoch {result['bestEpoch']}, dev {result['best']}); skipped")
        return result
    raise ValueError(f"{folder}: holds a finished reference trained with other settings ({result['settings']}); use another run folder or remove it")

def _restore(path: Path, settings: ReferenceSettings, model: SingleTaskModel, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR) -> dict:
    state = torch.load(path, map_location="cpu")
    if state["settings"] != settings.to_json():
        raise ValueError(f"{path.parent}: a run started with other settings ({state['settings']}); use another run folder or remove it")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torchRng"])
    return state["position"]


def _result(session: TaskSession, settings: ReferenceSettings, history: list[dict], steps_per_epoch: int) -> dict:
    best = best_epoch(history)
    return {
        "task": session.spec.name,
        "kind": session.spec.kind,
        "input": session.spec.input,
        "metric": session.spec.primary_metric,
        "method": "full fine-tuning",
        "checkpoint": {"name": session.checkpoint.name, "fingerprint": session.checkpoint.fingerprint},
        "settings": settings.to_json(),
        "trainExamples": len(session.train),
        "devExamples": len(session.dev),
        "stepsPerEpoch": steps_per_epoch,
        "epochs": history,
        "bestEpoch": best,
        "best": history[best - 1]["metrics"],
        "seconds": round(sum(e["trainSeconds"] + e["evalSeconds"] for e in history), 1),
        "machine": machine(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(result: dict, results: Path) -> Path:
    """The task's result as results/<task>.json (the committed copy)."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{result['task']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


def read_reference(results: Path, task: str) -> dict | None:
    """A task's committed reference (`write_result`), or None when there is none."""
    path = results / f"{task}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# ---------------------------------------------------------------------------- the command
def add_arguments(parser: argparse.ArgumentParser, repo: Path, shared: Path) -> None:
    """`mtbert reference`: one task (--task) or a recipe's tasks in sequence (--recipe, --tasks)."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="one task (a key of --data's tasks.json)")
    which.add_argument("--recipe", type=Path, help="a recipe (e.g. recipes/default.json): its pretrained checkpoint, data, max length and each task's crf/maxTrain; every task in order unless --tasks")
    parser.add_argument("--tasks", default=None, help="with --recipe: comma-separated tasks, trained in this order")
    parser.add_argument("--pretrained", default=str(shared / "pretrained" / "all-minilm-l6-v2"), help="checkpoint folder (with --task)")
    parser.add_argument("--data", type=Path, default=shared / "data", help="datasets root (with --task)")
    parser.add_argument("--max-length", type=int, default=None, help="max tokens per input (None: the recipe's, else 128)")
    parser.add_argument("--max-train", type=int, default=None, help="with --task: a seeded sample of the training split (a recipe's tasks use its maxTrain)")
    parser.add_argument("--crf", action="store_true", help="with --task, a tagging task: a CRF layer (a recipe's tasks use its crf)")
    parser.add_argument("--epochs", type=int, default=3, help="whole epochs; dev is scored after each and the best kept")
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate")
    parser.add_argument("--pair-lr", type=float, default=None, help="peak learning rate of sentence-pair tasks (None: --lr)")
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps the learning rate rises over (then decays linearly to 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches and dropout")
    parser.add_argument("--runs", type=Path, default=repo.parent / "runs" / "reference", help="run folders (checkpoints, best weights, logs), one per task: outside the repository")
    parser.add_argument("--results", type=Path, default=repo / "training" / "references", help="where each finished task's <task>.json is written (committed; no weights)")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints (and one at each epoch's end)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (None: every core)")


def run_command(args: argparse.Namespace) -> None:
    from .checkpoint import load_checkpoint
    from .data import load_task_spec
    from .pipeline import set_threads
    from .recipe_file import read_recipe, task_settings

    set_threads(args.threads)
    if args.recipe is not None:
        recipe = read_recipe(args.recipe)
        base = args.recipe.parent
        pretrained, data = (base / recipe["pretrained"]).resolve(), (base / recipe["data"]).resolve()
        names = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else list(recipe["tasks"])
        missing = [t for t in names if t not in recipe["tasks"]]
        if missing:
            raise ValueError(f"--tasks names tasks the recipe lacks: {', '.join(missing)}")
        max_length = args.max_length or recipe.get("maxSequenceLength", 128)
        plan = [(t, task_settings(recipe, t).get("crf", False), task_settings(recipe, t).get("maxTrain")) for t in names]
    else:
        pretrained, data, max_length = Path(args.pretrained), args.data, args.max_length or 128
        plan = [(args.task, args.crf, args.max_train)]
    checkpoint = load_checkpoint(pretrained)
    failed = []
    for task, crf, max_train in plan:
        try:
            spec = load_task_spec(data, task)
            lr = args.pair_lr if spec.input == "pair" and args.pair_lr is not None else args.lr
            settings = ReferenceSettings(args.epochs, lr, args.batch_size, max_length, args.warmup, seed=args.seed, crf=crf, max_train=max_train)
            session = TaskSession.open(checkpoint, data, task, max_train, max_length, args.seed, spec=spec, crf=crf)
            result = train_reference(session, settings, args.runs / task, args.checkpoint_every)
            print(f"{task}: best epoch {result['bestEpoch']}, dev {json.dumps(result['best'])}; written {write_result(result, args.results)}", flush=True)
        except Exception as error:  # noqa: BLE001 - reported, and the sequence goes on
            if len(plan) == 1:
                raise
            failed.append(task)  # one bad task does not stop an unattended sequence
            print(f"{task}: failed: {error}", flush=True)
    if failed:
        raise ValueError(f"not trained: {', '.join(failed)}")
