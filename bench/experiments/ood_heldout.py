"""How to combine the two out-of-domain distances of a head trained with a calibration share
(`--calibration-share`): the pretrained measure (unit-length mean of trunk layer 4) and the head's own
[CLS] state (the classifier's input), alone, the larger of their standardised log-distances, or their
mean; the [CLS] state against its class means (Mahalanobis; unit-length or raw), against its nearest
training example (cosine, `ood.NEIGHBOURS` of them), or both, weighted as served (`ood.COMBINED_WEIGHTS`)
(bench/experiments/README.md, "held-out part"). `draws` prints the nearest-example combinations
under four draws of the references; `pretrained-weight` CLINC150 at 2% under other weights of the
pretrained distance (the head's two readings sharing the rest).

Every variant is calibrated as the service is: statistics fitted on the part of train the head trained on
(a seeded 6,000), log-distances standardised and the empirical curve measured on the held-out part
(which neither the head nor the statistics saw), the threshold the Wilson-bounded one for the rate aimed
at. Then dev (in-scope, turned away) and 500 texts of every other source (caught) are scored; a task
with its own out-of-scope class (CLINC150's `oos`) also gets its dev in-scope accuracy with the
fallback and its out-of-scope dev queries answered `oos` (the rule or the head's own class). The
tasks are those of the bundle (`--bundle`, default models/default) whose heads were trained with a
calibration share.

    cd training
    /usr/bin/python3 ../bench/experiments/ood_heldout.py cache --out /tmp/ood-heldout.npz [--bundle B]
    /usr/bin/python3 ../bench/experiments/ood_heldout.py compare /tmp/ood-heldout.npz
    /usr/bin/python3 ../bench/experiments/ood_heldout.py pretrained-weight /tmp/ood-heldout.npz
    /usr/bin/python3 ../bench/experiments/ood_heldout.py draws /tmp/ood-heldout.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mtbert.bundle import BundleWriter  # noqa: E402
from mtbert.calibrate import PROBE_SOURCES, head_outputs, probe_examples  # noqa: E402
from mtbert.checkpoint import load_checkpoint  # noqa: E402
from mtbert.data import load_task_spec, read_examples, sample, split_file  # noqa: E402
from mtbert.encoded import EncodedSet  # noqa: E402
from mtbert.holdout import split  # noqa: E402
from mtbert.manifest_file import int8_matmuls  # noqa: E402
from mtbert.onnx_eval import Graph  # noqa: E402
from mtbert.ood import COMBINED_WEIGHTS, DistanceCalibration, classifier_input, fit_gaussian, fit_neighbours, log_scale, pooled_features  # noqa: E402
from mtbert.train import build_trunk  # noqa: E402
from ood_features import run_experiment  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[2] / "models" / "default"


def cache(args: argparse.Namespace) -> None:
    """Per held-out task: layer-4 unit means and head [CLS] states of its train part (6,000), held-out
    part, dev and every other probe source, and the labels of the first three."""
    torch.set_num_threads(2)
    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    tokenizer = BundleWriter(args.bundle)._tokenizer(manifest)
    trunk = build_trunk(load_checkpoint(args.pretrained), 5, int8_matmuls(manifest))
    saved: dict[str, np.ndarray] = {}
    for entry in (t for t in manifest["tasks"] if t.get("calibrationShare")):
        task, graph = entry["name"], Graph(args.bundle / entry["head"]["file"])
        labels, fallback = entry["output"]["labels"], entry["output"]["fallback"]["label"]
        saved[f"{task}|fallback"] = np.array(labels.index(fallback) if fallback in labels else -1)  # CLINC150's own `oos` class
        cls, spec = classifier_input(graph.model, entry["head"]["output"]), load_task_spec(args.data, entry["name"])
        kept, held = split(read_examples(split_file(args.data, task, "train"), spec), entry["calibrationShare"])
        sets = {"train": sample(kept, 6000), "held": held, "dev": read_examples(split_file(args.data, task, "dev"), spec)}
        sets |= {f"probe/{s}": probe_examples(args.data, s, False) for s in PROBE_SOURCES if s != task}
        for name, examples in sets.items():
            data = EncodedSet.build(examples, tokenizer, spec)
            saved[f"{task}|{name}|pooled"] = pooled_features(trunk, data, 4)
            outputs = head_outputs(graph, entry, trunk, data, extra=[cls])
            saved[f"{task}|{name}|cls"] = outputs[cls]
            if name == "dev":
                saved[f"{task}|dev|logits"] = outputs["logits"]
            if not name.startswith("probe/"):
                saved[f"{task}|{name}|labels"] = data.labels.numpy()
            print(f"{task}: {name}, {len(examples)} examples", flush=True)
    np.savez_compressed(args.out, **saved)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def standardiser(saved: dict, task: str, names: list[str]) -> Callable[..., dict[str, np.ndarray]]:
    """`standardised(kind, scale, fit)`: a measure's log-distance per set in `names`, standardised on the
    held-out part, its statistics fitted (`fit`, Mahalanobis by default) on the trained part's in-scope rows."""
    labels, oos = saved[f"{task}|train|labels"], int(saved[f"{task}|fallback"])  # the task's own out-of-scope class has no mean

    def standardised(kind: str, scale=lambda a: a, fit=fit_gaussian) -> dict[str, np.ndarray]:  # noqa: ANN001
        keep = labels != oos
        stats = fit(scale(saved[f"{task}|train|{kind}"][keep]), labels[keep])
        distances = {n: stats.distances(scale(saved[f"{task}|{n}|{kind}"])) for n in names}
        centre, spread = log_scale(distances["held"])
        return {n: (np.log(np.maximum(v, 1e-12)) - centre) / spread for n, v in distances.items()}

    return standardised


def nearest(standardised: Callable[..., dict[str, np.ndarray]], seed: int) -> dict[str, np.ndarray]:
    """The [CLS] state's nearest-example reading, its references drawn with `seed`."""
    return standardised("cls", fit=lambda x, y: fit_neighbours(x, y, seed=seed))


def nearest_combinations(pre: dict, cls: dict, near: dict, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """The combinations with the nearest-example reading: its mean with the pretrained distance, the
    default weighting, and the head's two readings alone (`--ood-weights 0,0.5,0.5`)."""
    return {
        "mean, [CLS] nearest example": {n: (pre[n] + near[n]) / 2 for n in names},
        SERVED: {n: sum(w * v[n] for w, v in zip(COMBINED_WEIGHTS, (pre, cls, near))) for n in names},
        HEAD_ALONE: {n: (cls[n] + near[n]) / 2 for n in names},
    }


def variants(saved: dict, task: str, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Every variant's standardised log-distance (the combinations: their means) per set in `names`."""
    standardised = standardiser(saved, task, names)
    pre, cls, cls_unit = standardised("pooled"), standardised("cls"), standardised("cls", unit)
    near = nearest(standardised, 0)
    return {
        "pretrained layer 4": pre, "head [CLS]": cls, "head [CLS], unit length": cls_unit, "head [CLS], nearest example": near,
        "larger of the two": {n: np.maximum(pre[n], cls[n]) for n in names},
        "mean of the two (2.3.0)": {n: (pre[n] + cls[n]) / 2 for n in names},
        "mean, [CLS] unit length": {n: (pre[n] + cls_unit[n]) / 2 for n in names},
    } | nearest_combinations(pre, cls, near, names)


SERVED = "**½ layer 4, ¼ [CLS] class means, ¼ [CLS] nearest example (served)**"
HEAD_ALONE = "½ [CLS] class means, ½ [CLS] nearest example (CLINC150 from 2.6.0)"


def set_names(saved: dict, task: str) -> list[str]:
    return ["held", "dev"] + sorted(k.split("|")[1] for k in saved if k.startswith(f"{task}|probe/") and k.endswith("|pooled"))


def turned_away(saved: dict, task: str, names: list[str], score: dict[str, np.ndarray], aim: float) -> tuple[dict[str, float], np.ndarray]:
    """Per set, the share (%) the Wilson-bounded threshold for `aim` turns away (held-out and dev: of the
    in-scope ones), and which dev examples it turns away."""
    oos = int(saved[f"{task}|fallback"])
    in_scope = {n: saved[f"{task}|{n}|labels"] != oos if n in ("held", "dev") else slice(None) for n in names}
    curve = DistanceCalibration.from_scores(np.exp(score["held"][in_scope["held"]]), "variant")
    threshold = curve.threshold(aim)
    rate = {n: 100 * float((curve.p_value(np.exp(score[n][in_scope[n]])) < threshold).mean()) for n in names}
    return rate, curve.p_value(np.exp(score["dev"])) < threshold


def own_class_figures(fires: np.ndarray, top: np.ndarray, gold: np.ndarray, oos: int) -> tuple[float, float]:
    """A task with its own out-of-scope class: dev in-scope accuracy with the fallback (the rule fires or
    the head answers `oos`: either way not the right intent) and its out-of-scope queries answered `oos` (%)."""
    answered, inside = fires | (top == oos), gold != oos
    return 100 * float(((top == gold) & ~answered)[inside].mean()), 100 * float(answered[~inside].mean())


def compare(saved: dict) -> None:
    """Each variant at 1% and 2% aimed at: held-out and dev in-scope turned away, every source caught (%)."""
    for task in sorted({k.split("|")[0] for k in saved}):
        names = set_names(saved, task)
        oos, scores = int(saved[f"{task}|fallback"]), variants(saved, task, names)
        own = oos >= 0  # the head's own out-of-scope class: its dev queries are scored apart
        dev_gold, dev_top = saved[f"{task}|dev|labels"], saved[f"{task}|dev|logits"].argmax(1)
        extra = " | dev in-scope accuracy with the fallback | dev out-of-scope answered `oos`" if own else ""
        print(f"\n{task}\n\n| measure | aimed at | held-out turned away | dev turned away{extra} | " + " | ".join(n.removeprefix("probe/") for n in names[2:]) + " |")
        print("| --- | ---: | ---: | ---: | " + "---: | " * (2 if own else 0) + " | ".join("---:" for _ in names[2:]) + " |")
        for aim in (0.01, 0.02):
            for name, score in scores.items():
                rate, fires = turned_away(saved, task, names, score, aim)
                cells = ""
                if own:
                    accuracy, recall = own_class_figures(fires, dev_top, dev_gold, oos)
                    cells = f" | {accuracy:.2f} | {recall:.1f}"
                print(f"| {name} | {100 * aim:g}% | {rate['held']:.2f} | {rate['dev']:.2f}{cells} | " + " | ".join(f"{rate[n]:.1f}" for n in names[2:]) + " |", flush=True)


def draws(saved: dict, seeds: int = 4) -> None:
    """The two nearest-example combinations at 1% under `seeds` draws of the references: every source
    caught (%), each draw and their mean; how much the measure depends on which examples it keeps."""
    for task in sorted({k.split("|")[0] for k in saved}):
        names = set_names(saved, task)
        print(f"\n{task}\n\n| measure | draw | dev turned away | " + " | ".join(n.removeprefix("probe/") for n in names[2:]) + " |")
        print("| --- | ---: | ---: | " + " | ".join("---:" for _ in names[2:]) + " |")
        standardised = standardiser(saved, task, names)
        pre, cls = standardised("pooled"), standardised("cls")  # the same for every draw
        combined = [nearest_combinations(pre, cls, nearest(standardised, seed), names) for seed in range(seeds)]
        for name in combined[0]:
            rates = [turned_away(saved, task, names, draw[name], 0.01)[0] for draw in combined]
            for label, rate in [(str(seed), r) for seed, r in enumerate(rates)] + [("mean", {n: float(np.mean([r[n] for r in rates])) for n in names})]:
                print(f"| {name} | {label} | {rate['dev']:.2f} | " + " | ".join(f"{rate[n]:.1f}" for n in names[2:]) + " |", flush=True)


def pretrained_weight(saved: dict, seeds: int = 3, task: str = "clinc150") -> None:
    """CLINC150 at 2% aimed at: the pretrained distance's weight (the head's two readings share the
    rest) against its own out-of-scope queries, in-scope accuracy and the other sources of text (not
    the assistant requests its intents cover), under `seeds` draws of the references."""
    names = set_names(saved, task)
    standardised = standardiser(saved, task, names)
    pre, cls = standardised("pooled"), standardised("cls")
    oos, gold, top = int(saved[f"{task}|fallback"]), saved[f"{task}|dev|labels"], saved[f"{task}|dev|logits"].argmax(1)
    text = [n for n in names[2:] if n.removeprefix("probe/") in ("cola", "mnli", "mrpc", "qnli", "sst2", "stsb")]
    print(f"\n{task}, 2% aimed at\n\n| pretrained weight | draw | dev turned away | dev in-scope accuracy with the fallback | dev out-of-scope answered `oos` | other text, lowest source |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for seed in range(seeds):
        near = nearest(standardised, seed)
        for weight in (0.0, 0.1, 0.2, 0.25):
            score = {n: weight * pre[n] + (1 - weight) / 2 * (cls[n] + near[n]) for n in names}
            rate, fires = turned_away(saved, task, names, score, 0.02)
            accuracy, recall = own_class_figures(fires, top, gold, oos)
            print(f"| {weight:g} | {seed} | {rate['dev']:.2f} | {accuracy:.2f} | {recall:.1f} | {min(rate[n] for n in text):.1f} |", flush=True)


def main() -> None:
    run_experiment(
        __doc__, cache, {"compare": compare, "draws": draws, "pretrained-weight": pretrained_weight}, lambda path: dict(np.load(path)),
        lambda parser: parser.add_argument("--bundle", type=Path, default=BUNDLE, help="bundle whose held-out-trained heads are compared"),
    )


if __name__ == "__main__":
    main()
