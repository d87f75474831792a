"""Calibrating a bundle's classification task from its data, without out-of-scope examples:
the out-of-domain measure and its threshold (`ood`), a softmax temperature, and whether the head
beats its majority class by enough to be served by default.

What is fitted on what, so that every figure is measured on examples the fitted thing never saw:
- the distance statistics on the training split, its threshold on cross-fitted training distances
  (each fold scored by statistics fitted on the other folds);
- a head trained with a calibration share (`holdout`, `--calibration-share`) is measured on its own
  [CLS] features too: both statistics on the part it trained on, the threshold on the held-out part
  (whose examples neither the head nor the statistics saw), the two distances combined (`ood.combine`);
- the temperature on the dev split (the head never trained on it); its expected calibration error
  after scaling is reported cross-fitted over two halves of dev;
- the dev figures (in-scope rejection and accuracy with the fallback) come after all of that.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import torch
from tqdm import tqdm

from .checkpoint import Checkpoint, sha256_file
from .data import TaskSpec, load_task_spec, read_examples, split_file
from .holdout import training_split
from .encoded import EncodedSet
from .manifest_file import BundleError, int8_matmuls
from .ood import (
    COMBINED_WEIGHTS, DISTANCE_INPUT, DISTANCE_OUTPUT, FOLDS, RULE, DistanceCalibration, GaussianStats, HeadFeatureMeasure, add_distance_output, classifier_input, combine, cross_fit_distances,
    fit_gaussian, fit_head_measure, pooled_features,
)
from .onnx_eval import Graph
from .records import Example
from .tokenization import WordPieceTokenizer
from .train import build_trunk, length_batches, pad_ids

DEFAULT_FALLBACK_LABEL = "out_of_scope"
ECE_BINS = 15
# A head is served by default when its dev accuracy beats the majority class's by at least this many
# points and by more than the 95% one-sided margin of a binomial proportion on the dev set.
MIN_GAIN_OVER_MAJORITY = 2.0
# Training examples the statistics are fitted on (a seeded sample beyond): 384-dimensional features
# need thousands, not SST-2's 67,000.
MAX_TRAIN = 20_000


@dataclass
class TaskCalibration:
    """Everything `calibrate_task` decided for one task, and the figures behind it (REPORT.md)."""

    task: str
    label: str
    rejection: float
    calibration: DistanceCalibration
    temperature: float
    served_by_default: bool
    stats: GaussianStats
    layer: int  # the trunk layer the distance pools
    figures: dict[str, float] = field(default_factory=dict)
    head_measure: HeadFeatureMeasure | None = None  # the head's own features, combined with the pooled distance
    aimed_at: float | None = None  # the in-scope rejection rate the threshold was set for (`--rejection`)

    def fallback_entry(self) -> dict:
        f = self.figures
        return {
            "label": self.label, "rule": RULE, "threshold": self.rejection, **({"aimedAt": self.aimed_at} if self.aimed_at is not None else {}),
            "calibration": self.calibration.manifest(),
            "expected": {"inScopeRejection": f["calRejection"], "upperBound95": f["calRejectionUpper95"]},
            # Dev figures at this threshold (`bundle retarget` keeps them, with the threshold they were measured at).
            "selection": {**{k: f[k] for k in ("devInScopeRejection", "inScopeAccuracy", "inScopeAccuracyWithout", "inScopeExamples")}, "atThreshold": self.rejection},
        }


def softmax_nll(logits: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    z = torch.tensor(logits, dtype=torch.float64) / temperature
    return float(torch.nn.functional.cross_entropy(z, torch.tensor(gold)))


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of softmax(logits / T) (golden section on log T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if softmax_nll(logits, gold, math.exp(a)) < softmax_nll(logits, gold, math.exp(b)):
            high = b
        else:
            low = a
    return round(math.exp((low + high) / 2), 6)


def scaling_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The temperature a task is served at: fitted (`fit_temperature`) when the head makes mistakes on
    these examples; 1 when it makes none, since the likelihood then keeps growing as T shrinks
    towards 0 (every score 1.0) and there is no evidence to scale by."""
    return fit_temperature(logits, gold) if (logits.argmax(1) != gold).any() else 1.0


def expected_calibration_error(logits: np.ndarray, gold: np.ndarray, temperature: float = 1.0, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their size (points)."""
    probabilities = torch.softmax(torch.tensor(logits, dtype=torch.float64) / temperature, -1).numpy()
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            total += rows.sum() * abs((predicted[rows] == gold[rows]).mean() - confidence[rows].mean())
    return 100 * total / len(gold)


def cross_fitted_ece(logits: np.ndarray, gold: np.ndarray, seed: int = 0) -> float:
    """ECE after temperature scaling, each half of the rows scaled by the T fitted on the other half."""
    order = np.random.default_rng(seed).permutation(len(gold))
    halves = [order[: len(order) // 2], order[len(order) // 2 :]]
    errors = []
    for fit, score in (halves, halves[::-1]):
        t = fit_temperature(logits[fit], gold[fit])
        errors.append(expected_calibration_error(logits[score], gold[score], t) * len(score))
    return sum(errors) / len(gold)


def majority_accuracy(train_gold: np.ndarray, dev_gold: np.ndarray) -> float:
    """Dev accuracy (points) of always answering the training split's most frequent class."""
    return 100 * float((dev_gold == np.bincount(train_gold.astype(int)).argmax()).mean())


def beats_majority(accuracy: float, majority: float, n: int) -> bool:
    """Whether a dev `accuracy` (points) beats the majority class's by MIN_GAIN_OVER_MAJORITY points
    and by more than a one-sided 95% binomial margin on `n` examples."""
    p = min(max(accuracy / 100, 1e-9), 1 - 1e-9)
    margin = 100 * 1.645 * math.sqrt(p * (1 - p) / max(n, 1))
    return bool(accuracy - majority >= max(MIN_GAIN_OVER_MAJORITY, margin))


def distance_layer(manifest: dict, entry: dict, layer: int | None = None) -> int:
    """The trunk layer the distance pools: `layer`, or by default the one below the branch layer when
    the trunk outputs it (on the default bundle's intent tasks layer 4 caught 79-100% of other-domain
    text where the branch layer 5 caught 7-97%, at the same in-scope cost: REPORT.md), else the branch layer."""
    outputs = {o["layer"] for o in manifest["trunk"]["outputs"]}
    if layer is not None:
        if layer not in outputs:
            raise BundleError(f"manifest.json: trunk.outputs has no layer {layer} to measure the out-of-domain distance at (outputs: {sorted(outputs)})")
        return layer
    below = entry["branchLayer"] - 1
    return below if below in outputs else entry["branchLayer"]


class BundleTaskData:
    """A bundle task's train and dev splits, tokenized as the bundle serves, with pooled features
    at the task's branch layer and the head's dev logits (through its ONNX graph)."""

    def __init__(
        self, bundle: Path, manifest: dict, entry: dict, data_root: Path, checkpoint: Checkpoint, tokenizer: WordPieceTokenizer, max_train: int | None = MAX_TRAIN,
        layer: int | None = None,
    ) -> None:
        self.entry = entry
        self.spec: TaskSpec = load_task_spec(data_root, entry["name"])
        served = entry["output"]["labels"]
        if len(self.spec.labels) != len(served):
            raise BundleError(f"{data_root / entry['name']}: {len(self.spec.labels)} labels, the bundle's task has {len(served)} (output.labels)")
        # A head trained with a calibration share (`TaskSession.open`) never saw that part of train: it
        # calibrates the combined measure, the statistics come from the rest (as the head trained).
        self.calibration_share = float(entry.get("calibrationShare") or 0.0)
        kept, held = training_split(split_file(data_root, entry["name"], "train"), self.spec, self.calibration_share, max_train)
        self.train = EncodedSet.build(kept, tokenizer, self.spec)
        self.dev = EncodedSet.build(read_examples(split_file(data_root, entry["name"], "dev"), self.spec), tokenizer, self.spec)
        self.layer = distance_layer(manifest, entry, layer)
        trunk = build_trunk(checkpoint, max(self.layer, entry["branchLayer"]), int8_matmuls(manifest))
        self.train_features = pooled_features(trunk, self.train, self.layer, desc=f"{entry['name']}: train features")
        self.dev_features = pooled_features(trunk, self.dev, self.layer, desc=f"{entry['name']}: dev features")
        self.head_path = bundle / entry["head"]["file"]
        graph = Graph(self.head_path)
        cls = classifier_input(graph.model, entry["head"]["output"]) if held else None  # the head's own features, measured too
        dev_outputs = head_outputs(graph, entry, trunk, self.dev, extra=[cls] if cls else None)
        self.dev_logits = dev_outputs["logits"]
        self.held: EncodedSet | None = None  # the calibration part of train (`holdout`), when the head never trained on one
        if cls is not None:
            self.held = EncodedSet.build(held, tokenizer, self.spec)
            self.held_features = pooled_features(trunk, self.held, self.layer, desc=f"{entry['name']}: held-out features")
            self.head_train, self.head_held = (head_outputs(graph, entry, trunk, data, extra=[cls])[cls] for data in (self.train, self.held))
            self.head_dev = dev_outputs[cls]


def head_outputs(graph: Graph, entry: dict, trunk: torch.nn.Module, data: EncodedSet, batch_size: int = 256, extra: list[str] | None = None) -> dict[str, np.ndarray]:
    """The head graph's outputs (logits, and the distance when it has one) over `data`, in order; and
    the graph's inner tensors named in `extra` (e.g. the classifier's input)."""
    layer, inputs = entry["branchLayer"], entry["head"]["inputs"]
    distance = entry["head"].get("outOfDomain") or {}
    wanted = graph.output_names + (extra or [])
    collected: dict[str, list[tuple[list[int], np.ndarray]]] = {n: [] for n in wanted}
    with torch.no_grad():
        for batch in length_batches(data.lengths(), batch_size, None):
            ids, mask, types = pad_ids([data.encodings[i] for i in batch])
            states = trunk(ids, mask, types)
            feeds = {inputs["hiddenStates"]: states[layer]}
            if "attention_mask" in graph.input_names or inputs.get("attentionMask"):
                feeds[inputs.get("attentionMask") or "attention_mask"] = mask
            if distance.get("hiddenStates") and distance["hiddenStates"] in graph.input_names:
                feeds[distance["hiddenStates"]] = states[distance["layer"]]
            for name, value in graph.run(feeds, wanted).items():
                collected[name].append((batch, value.numpy()))
    out = {}
    for name, parts in collected.items():
        first = parts[0][1]
        values = np.zeros((len(data),) + first.shape[1:], np.float32)
        for batch, value in parts:
            values[batch] = value
        out["logits" if name == entry["head"]["output"] else name] = values
    return out


def calibrate_task(
    data: BundleTaskData, rejection: float | None = None, label: str | None = None, seed: int = 0, weights: tuple[float, float, float] | None = None,
) -> tuple[TaskCalibration, onnx.ModelProto]:
    """Fits the distance statistics, threshold curve, temperature and default-serving decision of one
    classification task; returns them and the head graph with its distance output. `rejection`: the
    in-scope rejection rate aimed at (`DistanceCalibration.threshold`); `weights`: the combined
    measure's (`ood.measure_weights`, for a head trained with a calibration share). Either None: what
    the task's entry records from an earlier calibration (`recorded_settings`), else the defaults (the
    curve's rate, COMBINED_WEIGHTS), so that recalibrating keeps a task's chosen settings."""
    entry, spec = data.entry, data.spec
    if weights is not None and data.held is None:
        raise BundleError(
            f"{spec.name}: combined-measure weights apply to a head trained with a calibration share (train --calibration-share); this one trained on all of train "
            "(bundle calibrate: name the tasks that have one with --task)"
        )
    recorded_rejection, recorded_weights = recorded_settings(entry)
    rejection = rejection if rejection is not None else recorded_rejection
    weights = weights or recorded_weights or COMBINED_WEIGHTS  # checked and scaled once, by fit_head_measure
    label = label or (entry["output"].get("fallback") or {}).get("label") or DEFAULT_FALLBACK_LABEL
    served = entry["output"]["labels"]
    fallback_class = served.index(label) if label in served else None
    train_gold, dev_gold = data.train.labels.numpy(), data.dev.labels.numpy()
    inside = in_scope(train_gold, fallback_class)
    stats = fit_gaussian(data.train_features[inside], train_gold[inside])
    measure: HeadFeatureMeasure | None = None
    if data.held is None:
        scores = cross_fit_distances(data.train_features[inside], train_gold[inside], FOLDS, seed)
        calibration = DistanceCalibration.from_scores(scores, f"{FOLDS}-fold cross-fit on train ({spec.name})")
        dev_distances = stats.distances(data.dev_features)
    else:
        held_gold = data.held.labels.numpy()
        held_inside = in_scope(held_gold, fallback_class)
        pretrained = stats.distances(data.held_features[held_inside])
        measure = fit_head_measure(data.head_train[inside], train_gold[inside], pretrained, data.head_held[held_inside], seed, weights)
        scores = combine(pretrained, data.head_held[held_inside], measure)
        calibration = DistanceCalibration.from_scores(
            scores, f"held out of training ({spec.name}: {data.calibration_share:g} of train); layer {data.layer} mean, head [CLS] class-mean and nearest-example distances, "
            f"their standardised logs averaged with weights {', '.join(str(Fraction(w).limit_denominator(1000)) for w in measure.weights)}"
        )
        dev_distances = combine(stats.distances(data.dev_features), data.head_dev, measure)
    aimed_at = rejection if rejection is not None else calibration.default_rejection()
    threshold = calibration.threshold(aimed_at)
    head = add_distance_output(
        onnx.load(str(data.head_path)), stats, distance_input(entry, data.layer), entry["head"]["inputs"].get("attentionMask") or "attention_mask", measure, entry["head"]["output"]
    )
    figures = _figures(data, dev_distances, calibration, threshold, fallback_class, scores)
    temperature = scaling_temperature(data.dev_logits, dev_gold)
    figures.update(eceBefore=expected_calibration_error(data.dev_logits, dev_gold), eceAfter=cross_fitted_ece(data.dev_logits, dev_gold, seed), temperature=temperature)
    majority = majority_accuracy(train_gold, dev_gold)
    figures["majorityAccuracy"] = majority
    served_by_default = bool(beats_majority(figures["devAccuracyAll"], majority, len(dev_gold)))
    return TaskCalibration(spec.name, label, threshold, calibration, temperature, served_by_default, stats, data.layer, figures, measure, aimed_at), head


def recorded_settings(entry: dict) -> tuple[float | None, tuple[float, float, float] | None]:
    """The in-scope rejection rate (`aimedAt`) and combined-measure weights an earlier calibration of
    this task recorded in its manifest entry; None for what it does not record (entries written before
    these were recorded, or another rule)."""
    fallback = entry["output"].get("fallback") or {}
    aimed = fallback.get("aimedAt") if fallback.get("rule") == RULE else None
    measures = ((entry["head"].get("outOfDomain") or {}).get("combined") or {}).get("measures")
    weights = tuple(float(m["weight"]) for m in measures) if measures else None
    return (float(aimed) if aimed is not None else None), weights  # type: ignore[return-value]


def in_scope(gold: np.ndarray, fallback_class: int | None) -> np.ndarray:
    """Which examples are in scope: all of them, or those not labelled with the task's own fallback class."""
    return gold != fallback_class if fallback_class is not None else np.ones(len(gold), bool)


def _figures(data: BundleTaskData, dev_distances: np.ndarray, calibration: DistanceCalibration, rejection: float, fallback_class: int | None, scores: np.ndarray) -> dict[str, float]:
    """Calibration (cross-fitted or held-out) and dev rejection rates and dev accuracy with and without the fallback."""
    dev_gold = data.dev.labels.numpy()
    predicted = data.dev_logits.argmax(1)
    inside = in_scope(dev_gold, fallback_class)
    fires = calibration.p_value(dev_distances) < rejection
    # A fitted curve's rate is the fit's (a few dozen examples cannot show 1%); an empirical one's is measured.
    cal_rate = rejection if calibration.tail else float((calibration.p_value(scores) < rejection).mean())
    correct = predicted == dev_gold
    return {
        "calRejection": round(cal_rate, 5), "calRejectionUpper95": round(calibration.rate_upper_bound(cal_rate), 5), "calExamples": float(len(scores)),
        "devInScopeRejection": round(100 * float(fires[inside].mean()), 2),
        "inScopeAccuracyWithout": round(100 * float(correct[inside].mean()), 2),
        "inScopeAccuracy": round(100 * float((correct & ~fires)[inside].mean()), 2),
        "inScopeExamples": float(inside.sum()),
        "devOosRecall": round(100 * float((fires | (predicted == fallback_class))[~inside].mean()), 2) if (~inside).any() else float("nan"),
        "devAccuracyAll": 100 * float(correct.mean()),
    }


def distance_input(entry: dict, layer: int) -> str:
    """The graph input the distance pools: the head's own at its branch layer, else DISTANCE_INPUT."""
    return entry["head"]["inputs"]["hiddenStates"] if layer == entry["branchLayer"] else DISTANCE_INPUT


def apply_to_entry(entry: dict, result: TaskCalibration, head_file: Path) -> None:
    """The manifest entry of a calibrated task (the head file already written)."""
    entry["output"]["fallback"] = result.fallback_entry()
    entry["output"]["temperature"] = result.temperature
    distance = {"output": DISTANCE_OUTPUT, "layer": result.layer}
    if result.layer != entry["branchLayer"]:
        distance["hiddenStates"] = DISTANCE_INPUT
    if result.head_measure is not None:
        distance["combined"] = result.head_measure.manifest()
    entry["head"]["outOfDomain"] = distance
    if not entry["head"]["inputs"].get("attentionMask"):
        entry["head"]["inputs"]["attentionMask"] = "attention_mask"
    entry["head"]["sha256"] = sha256_file(head_file)
    entry["servedByDefault"] = result.served_by_default


# Other-domain probes for `ood_rates`: each source is one dataset's dev texts (`text`, and for pair
# tasks `text_pair` too), scored apart. CLINC150's are its own `oos` queries.
PROBE_SOURCES = {
    "banking77": "banking questions", "atis": "flight queries", "snips": "assistant requests", "clinc150": "CLINC150 out-of-scope queries",
    "mrpc": "news sentences", "stsb": "captions, news, forums", "sst2": "movie reviews", "cola": "linguistics examples",
    "qnli": "Wikipedia questions", "mnli": "fiction, letters, speech",
}
PROBE_LIMIT = 500


def probe_examples(data_root: Path, source: str, pair: bool, limit: int = PROBE_LIMIT) -> list[Example]:
    """Up to `limit` (seeded sample) dev lines of `source` as unlabelled examples of a single or pair task."""
    rows = [json.loads(line) for line in split_file(data_root, source, "dev").read_text(encoding="utf-8").splitlines() if line.strip()]
    if source == "clinc150":
        rows = [r for r in rows if r.get("label") == "oos"]
    rows = [r for r in rows if isinstance(r.get("text"), str) and (not pair or isinstance(r.get("text_pair"), str))]
    if len(rows) > limit:
        rows = [rows[i] for i in sorted(random.Random(0).sample(range(len(rows)), limit))]
    return [Example(r["text"], r.get("text_pair") if pair else None, 0) for r in rows]


def ood_rates(
    bundle: Path, manifest: dict, entries: list[dict], data_root: Path, checkpoint: Checkpoint, tokenizer: WordPieceTokenizer, probe_root: Path | None = None,
) -> dict[str, dict[str, float]]:
    """How often each calibrated task of `entries` (one branch layer and input kind) answers its
    fallback, as served (head graph with its distance output, the manifest's curve and threshold): on
    its in-scope dev examples, on its own out-of-scope dev examples when its fallback label is one of
    its classes (in the column of its own name), and on each other domain's probe texts apart (%). Each probe source's
    trunk states are computed once for all the tasks. `probe_root`: where the probe sources are
    (default `data_root`; an own task's folder holds only its own splits)."""
    probe_root = probe_root or data_root
    pair = entries[0]["input"] == "pair"
    trunk = build_trunk(checkpoint, max(max(e["branchLayer"], (e["head"].get("outOfDomain") or {}).get("layer", 0)) for e in entries), int8_matmuls(manifest))
    specs = {e["name"]: load_task_spec(data_root, e["name"]) for e in entries}
    graphs = {e["name"]: Graph(bundle / e["head"]["file"]) for e in entries}

    def fires(entry: dict, data: EncodedSet) -> np.ndarray:
        """Whether each input is answered with the fallback label: the rule fires, or the head's own
        top class is that label (CLINC150's `oos`)."""
        fallback, labels = entry["output"]["fallback"], entry["output"]["labels"]
        curve = DistanceCalibration.from_manifest(fallback["calibration"])
        outputs = head_outputs(graphs[entry["name"]], entry, trunk, data)
        own = outputs["logits"].argmax(1) == labels.index(fallback["label"]) if fallback["label"] in labels else False
        return (curve.p_value(outputs[DISTANCE_OUTPUT]) < fallback["threshold"]) | own

    rates: dict[str, dict[str, float]] = {}
    for entry in entries:
        spec, labels = specs[entry["name"]], entry["output"]["labels"]
        dev = read_examples(split_file(data_root, entry["name"], "dev"), spec)
        fallback_class = labels.index(entry["output"]["fallback"]["label"]) if entry["output"]["fallback"]["label"] in labels else None
        in_scope_dev = [e for e in dev if e.label != fallback_class]
        rates[entry["name"]] = {"in-scope dev": 100 * float(fires(entry, EncodedSet.build(in_scope_dev, tokenizer, spec)).mean())}
        if own_out_of_scope := [e for e in dev if fallback_class is not None and e.label == fallback_class]:
            # Its own out-of-scope dev queries (CLINC150's `oos`): their recall, in its own column.
            rates[entry["name"]][entry["name"]] = 100 * float(fires(entry, EncodedSet.build(own_out_of_scope, tokenizer, spec)).mean())
    for source in tqdm(PROBE_SOURCES, desc="other-domain probes", leave=False):
        examples = probe_examples(probe_root, source, pair) if (probe_root / source / "dev.jsonl").is_file() else []
        if not examples:
            continue
        data = EncodedSet.build(examples, tokenizer, next(iter(specs.values())))
        for entry in entries:
            if source != entry["name"]:
                rates[entry["name"]][source] = 100 * float(fires(entry, data).mean())
    return rates
