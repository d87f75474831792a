"""Out-of-domain measure on the heads' own fine-tuned features: the Mahalanobis distance of the
[CLS] state the classifier reads (the head's last layer), against the served measure on pretrained
features (unit-length mean of trunk layer 4), for the default bundle's intent heads
(bench/experiments/README.md, "fine-tuned features").

The head trained on its training split, so that split's fine-tuned features are tighter than an
unseen utterance's and cannot calibrate a threshold (cross-fitting does not help: every fold was
trained on). Both measures are therefore calibrated alike here: statistics from the training split,
the threshold at the 99th percentile of one random half of dev, and every rate measured on the other
half of dev and on the ten probe sources (ten random halvings averaged).

    cd training
    /usr/bin/python3 ../bench/experiments/ood_finetuned.py cache --out /tmp/ood-finetuned.npz
    /usr/bin/python3 ../bench/experiments/ood_finetuned.py compare /tmp/ood-finetuned.npz
    /usr/bin/python3 ../bench/experiments/ood_finetuned.py tradeoff /tmp/ood-finetuned.npz
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mtbert.bundle import BundleWriter  # noqa: E402
from mtbert.checkpoint import load_checkpoint  # noqa: E402
from mtbert.manifest_file import int8_matmuls  # noqa: E402
from mtbert.ood import fit_gaussian  # noqa: E402
from mtbert.onnx_eval import Graph  # noqa: E402
from mtbert.train import build_trunk, length_batches, pad_ids  # noqa: E402
from ood_features import INTENTS, PROBES, read, run_experiment  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[2] / "models" / "default"
SELF = {"banking77": "banking", "atis": "flights", "snips": "assistant", "clinc150": "clinc_oos"}
FEATURES = "ood_finetuned_cls"


def with_classifier_input(head: Path, logits: str, folder: Path) -> Graph:
    """The head graph with the classifier's input (the [CLS] state of its last layer) as an output."""
    model = onnx.load(str(head))
    classifier = next(n for n in model.graph.node if logits in n.output)
    model.graph.node.append(helper.make_node("Identity", [classifier.input[0]], [FEATURES]))
    model.graph.output.append(helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["batch", None]))
    path = folder / head.name
    onnx.save(model, str(path))
    return Graph(path)


def cache(args: argparse.Namespace) -> None:
    """Per intent task: fine-tuned [CLS] features and unit-length layer-4 means of its train (seeded
    4,000), dev and every probe source (500 each), and the labels of train and dev."""
    torch.set_num_threads(2)
    manifest = json.loads((BUNDLE / "manifest.json").read_text(encoding="utf-8"))
    tokenizer = BundleWriter(BUNDLE)._tokenizer(manifest)
    trunk = build_trunk(load_checkpoint(args.pretrained), 5, int8_matmuls(manifest))
    texts = {f"probe/{p}": read(args.data, task, split, None if p == "clinc_oos" else 500) for p, (task, split, _) in PROBES.items()}
    texts["probe/clinc_oos"] = ([t for t, label in zip(*texts["probe/clinc_oos"]) if label == "oos"], [])
    saved: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as folder:
        for task in INTENTS:
            entry = next(t for t in manifest["tasks"] if t["name"] == task)
            graph = with_classifier_input(BUNDLE / entry["head"]["file"], entry["head"]["output"], Path(folder))
            sets = {f"{task}/{s}": read(args.data, task, s, 4000 if s == "train" else None) for s in ("train", "dev")} | texts
            for key, (rows, labels) in sets.items():
                encodings = [tokenizer.encode(t) for t in rows]
                tuned, pretrained = np.zeros((len(rows), 384), np.float32), np.zeros((len(rows), 384), np.float32)
                with torch.no_grad():
                    for batch in tqdm(length_batches([len(e.input_ids) for e in encodings], 128, None), desc=f"{task}: {key}", leave=False):
                        ids, mask, types = pad_ids([encodings[i] for i in batch])
                        states = trunk(ids, mask, types)
                        feeds = {entry["head"]["inputs"]["hiddenStates"]: states[entry["branchLayer"]], "attention_mask": mask, "ood_hidden_states": states[4]}
                        tuned[batch] = graph.run({k: v for k, v in feeds.items() if k in graph.input_names})[FEATURES].numpy()
                        weights = mask.unsqueeze(-1).float()
                        pretrained[batch] = ((states[4] * weights).sum(1) / weights.sum(1)).numpy()
                saved[f"{task}|{key}|tuned"] = tuned
                saved[f"{task}|{key}|pretrained"] = pretrained / np.linalg.norm(pretrained, axis=1, keepdims=True)
                if not key.startswith("probe/"):
                    saved[f"{task}|{key}|labels"] = np.array(labels)
    np.savez_compressed(args.out, **saved)


def distances(saved: dict, task: str, kind: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """In-scope dev distances and each other source's, under statistics fitted on the training split."""
    labels = saved[f"{task}|{task}/train|labels"]
    inside = labels != "oos"  # CLINC150's own out-of-scope training queries are no class to measure against
    stats = fit_gaussian(saved[f"{task}|{task}/train|{kind}"][inside], labels[inside])
    dev = stats.distances(saved[f"{task}|{task}/dev|{kind}"])[saved[f"{task}|{task}/dev|labels"] != "oos"]
    return dev, {p: stats.distances(saved[f"{task}|probe/{p}|{kind}"]) for p in PROBES if p != SELF[task]}


MEASURES = {"pretrained layer 4 (served)": ["pretrained"], "fine-tuned [CLS]": ["tuned"], "both": ["pretrained", "tuned"]}


def rates(measured: dict, kinds: list[str], percentile: float) -> tuple[float, dict[str, float]]:
    """Mean over ten halvings of dev: the share of in-scope dev turned away (other half) and of each
    source caught, when an input's score is the larger of its `kinds` log-distances, each standardised
    by the calibration half's in-scope mean and deviation, cut at that half's `percentile` of the score."""
    turned, caught = [], {p: [] for p in measured["pretrained"][1]}
    for seed in range(10):
        order = np.random.default_rng(seed).permutation(len(measured["pretrained"][0]))
        fit, score = order[: len(order) // 2], order[len(order) // 2 :]
        logs = {k: np.log(measured[k][0][fit]) for k in kinds}

        def score_of(values: dict[str, np.ndarray]) -> np.ndarray:
            return np.max([(np.log(values[k]) - logs[k].mean()) / logs[k].std() for k in kinds], axis=0)  # noqa: B023
        cut = np.quantile(score_of({k: measured[k][0][fit] for k in kinds}), percentile)
        turned.append(100 * float((score_of({k: measured[k][0][score] for k in kinds}) > cut).mean()))
        for p in caught:
            caught[p].append(100 * float((score_of({k: measured[k][1][p] for k in kinds}) > cut).mean()))
    return float(np.mean(turned)), {p: float(np.mean(v)) for p, v in caught.items()}


def compare(saved: dict) -> None:
    """Each measure alone, and both, cut at the calibration half's 99th percentile."""
    print("| task | features | in-scope dev turned away (other half) | " + " | ".join(PROBES) + " |")
    for task in INTENTS:
        measured = {kind: distances(saved, task, kind) for kind in ("pretrained", "tuned")}
        for name, kinds in MEASURES.items():
            turned, caught = rates(measured, kinds, 0.99)
            print(f"| {task} | {name} | {turned:.2f} | " + " | ".join(f"{caught[p]:.1f}" if p in caught else "—" for p in PROBES) + " |", flush=True)


def tradeoff(saved: dict) -> None:
    """SNIPS and CLINC150: each measure and both, cut at the 98th, 99th and 99.5th percentile of the
    calibration half (in-scope turned away against other sources caught, at matched costs)."""
    print("| task | features | percentile | in-scope dev turned away | " + " | ".join(PROBES) + " |")
    for task in ("snips", "clinc150"):
        measured = {kind: distances(saved, task, kind) for kind in ("pretrained", "tuned")}
        for name, kinds in MEASURES.items():
            for percentile in (0.98, 0.99, 0.995):
                turned, caught = rates(measured, kinds, percentile)
                print(f"| {task} | {name} | {100 * percentile:g} | {turned:.2f} | " + " | ".join(f"{caught[p]:.0f}" if p in caught else "—" for p in PROBES) + " |", flush=True)


def main() -> None:
    run_experiment(__doc__, cache, {"compare": compare, "tradeoff": tradeoff}, lambda path: dict(np.load(path)))


if __name__ == "__main__":
    main()
