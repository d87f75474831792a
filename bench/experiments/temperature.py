"""Which confidence calibration for the default bundle's classification heads (issue #32, item 5):
one softmax temperature fitted by likelihood (what `bundle calibrate` serves), fitted so that mean
confidence equals accuracy, or fitted to minimise ECE itself; each scored by ECE cross-fitted over
two halves of dev (fitted on one half, scored on the other), ten random splits averaged.

    cd training
    /usr/bin/python3 ../bench/experiments/temperature.py logits --out /tmp/dev-logits.npz atis banking77 snips clinc150 sst2
    /usr/bin/python3 ../bench/experiments/temperature.py compare /tmp/dev-logits.npz
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
from mtbert.bundle import BundleWriter  # noqa: E402
from mtbert.calibrate import expected_calibration_error, fit_temperature, head_outputs  # noqa: E402
from mtbert.checkpoint import load_checkpoint  # noqa: E402
from mtbert.data import load_task_spec, read_examples, split_file  # noqa: E402
from mtbert.encoded import EncodedSet  # noqa: E402
from mtbert.manifest_file import int8_matmuls  # noqa: E402
from mtbert.onnx_eval import Graph  # noqa: E402
from mtbert.train import build_trunk  # noqa: E402


def logits(args: argparse.Namespace) -> None:
    """The served heads' dev logits (int8 trunk as served, heads through their ONNX graphs)."""
    torch.set_num_threads(2)
    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    tokenizer = BundleWriter(args.bundle)._tokenizer(manifest)
    trunk = build_trunk(load_checkpoint(args.pretrained), max(t["branchLayer"] for t in manifest["tasks"]), int8_matmuls(manifest))
    saved = {}
    for name in args.tasks:
        entry = next(t for t in manifest["tasks"] if t["name"] == name)
        spec = load_task_spec(args.data, name)
        dev = EncodedSet.build(read_examples(split_file(args.data, name, "dev"), spec), tokenizer, spec)
        saved[name] = head_outputs(Graph(args.bundle / entry["head"]["file"]), entry, trunk, dev)["logits"]
        saved[f"{name}/gold"] = dev.labels.numpy()
    np.savez(args.out, **saved)


def confidence_and_accuracy(values: np.ndarray, gold: np.ndarray, temperature: float) -> tuple[float, float]:
    p = torch.softmax(torch.tensor(values, dtype=torch.float64) / temperature, -1).numpy()
    return float(p.max(1).mean()), float((p.argmax(1) == gold).mean())


def matching_temperature(values: np.ndarray, gold: np.ndarray) -> float:
    """The T at which mean top confidence equals accuracy (bisection on log T)."""
    low, high = math.log(0.05), math.log(20.0)
    for _ in range(60):
        mid = (low + high) / 2
        confidence, accuracy = confidence_and_accuracy(values, gold, math.exp(mid))
        low, high = (mid, high) if confidence > accuracy else (low, mid)
    return math.exp((low + high) / 2)


def ece_minimising_temperature(values: np.ndarray, gold: np.ndarray) -> float:
    grid = np.exp(np.linspace(math.log(0.3), math.log(5.0), 80))
    return float(grid[np.argmin([expected_calibration_error(values, gold, t) for t in grid])])


FITS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "none": lambda values, gold: 1.0, "likelihood (served)": fit_temperature,
    "confidence = accuracy": matching_temperature, "minimum ECE": ece_minimising_temperature,
}


def compare(args: argparse.Namespace) -> None:
    saved = dict(np.load(args.logits_file))
    print("| task | dev rows | mean confidence / accuracy | " + " | ".join(FITS) + " |")
    for name in [k for k in saved if "/" not in k]:
        values, gold = saved[name], saved[f"{name}/gold"]
        errors: dict[str, list[float]] = {k: [] for k in FITS}
        for seed in range(10):
            order = np.random.default_rng(seed).permutation(len(gold))
            halves = [order[: len(order) // 2], order[len(order) // 2 :]]
            for fit, score in (halves, halves[::-1]):
                for key, fitter in FITS.items():
                    errors[key].append(expected_calibration_error(values[score], gold[score], fitter(values[fit], gold[fit])))
        confidence, accuracy = confidence_and_accuracy(values, gold, 1.0)
        print(f"| {name} | {len(gold)} | {100 * confidence:.1f} / {100 * accuracy:.1f} | " + " | ".join(f"{np.mean(v):.2f}" for v in errors.values()) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("logits")
    p.add_argument("tasks", nargs="+")
    p.add_argument("--bundle", type=Path, default=Path("../models/default"))
    p.add_argument("--data", type=Path, default=Path("../../shared/data"))
    p.add_argument("--pretrained", type=Path, default=Path("../../shared/pretrained/all-minilm-l6-v2"))
    p.add_argument("--out", type=Path, required=True)
    sub.add_parser("compare").add_argument("logits_file", type=Path)
    args = parser.parse_args()
    {"logits": logits, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
