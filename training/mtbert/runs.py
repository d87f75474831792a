"""A trained head on disk (a "run"): its weights, its ONNX graph and what is known about it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .checkpoint import BertConfig, Checkpoint, load_checkpoint
from .data import TaskSpec
from .export import head_metadata
from .modeling import TaskHead

RUN_FILE, WEIGHTS_FILE, HEAD_FILE = "run.json", "head.pt", "head.onnx"


@dataclass
class RunInfo:
    task: dict  # TaskSpec fields
    method: str  # "partial" | "distilled" | "full"
    branch_layer: int  # trunk layer the head reads (frozen layers)
    head_layers: int
    pretrained_path: str
    pretrained_name: str
    fingerprint: str
    config: dict
    metrics: dict[str, float] = field(default_factory=dict)  # dev metrics of this head
    teacher: str | None = None  # run folder of the teacher, for a distilled head
    hyper: dict = field(default_factory=dict)
    int8_matmuls: bool = False  # trained on a trunk whose weight matmuls run in int8 (`build_trunk`)
    data_root: str | None = None  # where its splits were read (bundle add calibrates the out-of-domain fallback from them)

    @property
    def head_metadata(self) -> dict[str, str]:
        """What the head's ONNX graph records about where it belongs (export.head_metadata)."""
        return head_metadata(self.branch_layer, self.task["input"], self.fingerprint)

    @property
    def spec(self) -> TaskSpec:
        raw = dict(self.task)
        if raw.get("value_range") is not None:
            raw["value_range"] = tuple(raw["value_range"])
        return TaskSpec(**raw)


def save_run(folder: Path, info: RunInfo, head: TaskHead) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), folder / WEIGHTS_FILE)
    (folder / RUN_FILE).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")


def read_info(folder: Path) -> RunInfo:
    """A run's run.json, without loading its weights."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a run folder ({RUN_FILE} is missing)")
    return RunInfo(**json.loads(path.read_text(encoding="utf-8")))


def load_run(folder: Path) -> tuple[RunInfo, TaskHead]:
    info = read_info(folder)
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu")
    crf = "crf.transitions" in state  # a tagging head trained with a CRF layer
    head = TaskHead(BertConfig.from_dict(info.config), info.head_layers, info.spec.output_kind, info.spec.num_outputs, crf=crf)
    head.load_state_dict(state)
    return info, head.eval()


def run_checkpoint(info: RunInfo, override: str | None = None) -> Checkpoint:
    """The pretrained checkpoint a run was trained from, checked by fingerprint."""
    checkpoint = load_checkpoint(override or info.pretrained_path)
    if checkpoint.fingerprint != info.fingerprint:
        raise ValueError(f"{checkpoint.path}: its weights (fingerprint {checkpoint.fingerprint[:12]}) are not the ones the run was trained on ({info.fingerprint[:12]})")
    return checkpoint
