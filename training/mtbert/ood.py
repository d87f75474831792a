"""Out-of-domain measure of a classification task, needing no out-of-scope examples.

An input's hidden states at a trunk layer, mean-pooled over its tokens and scaled to unit length, are
compared with the task's training data: the squared Mahalanobis distance to the nearest class mean under one
shared within-class covariance (Lee et al., 2018; Podolskiy et al., 2021), shrunk towards a scaled
identity (Ledoit and Wolf, 2004) so that a few dozen examples suffice. The distance is computed in
the head's own ONNX graph (a second output, `ood_distance`), so a head file carries its statistics,
uploads and runs on any device like any head.

Unit length because it measured better everywhere (bench/experiments/README.md, "Out-of-domain
measure, second round"): the direction of the pooled vector carries the topic, its length mostly the
utterance's length and wording.

The threshold is calibrated on examples the statistics were not fitted on: the training split is
cut into folds, each fold's distances are measured with statistics fitted on the others (cross-fit),
and the manifest stores the curve distance -> share of those in-scope examples at least as far (a
conformal p-value). The service answers the fallback label when that share is below the threshold,
which is therefore the in-scope rejection rate aimed at (default 1%). With fewer than
PARAMETRIC_BELOW calibration examples (an own task of a few dozen rows) the empirical curve ends
before 1% and would be extrapolated from its last two points; the curve is then that of a
log-normal fitted to the cross-fitted distances (their logarithms' mean and deviation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from tqdm import tqdm

from .encoded import EncodedSet
from .modeling import Trunk
from .train import length_batches, pad_ids

DISTANCE_OUTPUT = "ood_distance"
DISTANCE_INPUT = "ood_hidden_states"  # the graph input of the pooled layer, when it is not the branch layer
RULE = "mahalanobis"
DEFAULT_REJECTION = 0.01
# The default of a task with a fitted curve (under PARAMETRIC_BELOW calibration examples: an own task
# of a few dozen rows). There other assistant requests lie as close as the task's own tail, and
# aiming at 1% caught a median 65% of them, 2% 80% (1.4% of in-scope turned away): bench/experiments/
# README.md, "Out-of-domain measure, third round".
FEW_EXAMPLES_REJECTION = 0.02
FOLDS = 5
CURVE_POINTS = 64
PARAMETRIC_BELOW = 1000  # calibration examples under which the curve is a log-normal fit (module docstring)
LOG_NORMAL = "log-normal"  # calibration.tail of a fitted curve
_PREFIX = "ood_"  # names of the nodes and initialisers this module adds to a head graph
# Training examples whose head [CLS] states a combined measure keeps as neighbours (float16: 768 KB at
# width 384). On SNIPS's held-out part 1000 caught as many flight queries as all 6000, 500 fewer
# (bench/experiments/README.md, "held-out part", the head's own features read twice).
NEIGHBOURS = 1000
# Cosine distances are clamped here: float16 references round a cosine by some 1e-5 at width 384, so nearer than
# that is noise (even negative), and its logarithm would stretch the held-out spread.
COSINE_FLOOR = 1e-4


def pooled_features(trunk: Trunk, data: EncodedSet, layer: int, batch_size: int = 128, desc: str = "pooled features") -> np.ndarray:
    """Each example's hidden states at `layer`, averaged over its tokens ([CLS] and [SEP] included,
    padding not) and scaled to unit length, as the head graph pools them: float32 [n, hidden]."""
    out = np.zeros((len(data), trunk.config.hidden_size), np.float32)
    with torch.no_grad():
        for batch in tqdm(length_batches(data.lengths(), batch_size, None), desc=desc, leave=False):
            ids, mask, types = pad_ids([data.encodings[i] for i in batch])
            hidden = trunk(ids, mask, types)[layer]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            out[batch] = ((hidden * weights).sum(1) / weights.sum(1)).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@dataclass
class GaussianStats:
    """What the head graph stores: the whitening matrix W (z = W x) and the whitened class means,
    both rounded to float16 (their storage), so that scores computed here equal the graph's."""

    whitening: np.ndarray  # [hidden, hidden]
    means: np.ndarray  # [classes, hidden], whitened

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Squared distance of each row to the nearest class mean, float32 as the graph computes it."""
        w = self.whitening.astype(np.float32)
        m = self.means.astype(np.float32)
        z = features.astype(np.float32) @ w.T
        squared = (z * z).sum(1, keepdims=True) - 2 * (z @ m.T) + (m * m).sum(1)[None, :]
        return squared.min(1)


def fit_gaussian(features: np.ndarray, labels: np.ndarray) -> GaussianStats:
    """Class means and one within-class covariance with Ledoit-Wolf shrinkage to a scaled identity,
    from rows of `features` and their class `labels` (classes without rows are left out)."""
    x = features.astype(np.float64)
    classes = np.unique(labels)
    means = np.stack([x[labels == c].mean(0) for c in classes])
    centred = x - means[np.searchsorted(classes, labels)]
    n, d = centred.shape
    sample = centred.T @ centred / n
    scale = np.trace(sample) / d
    target_gap = ((sample - scale * np.eye(d)) ** 2).sum()
    # Ledoit-Wolf: how far the sample covariance is from its expectation, against its distance to the target.
    spread = ((centred**2).sum(1) ** 2).sum() / n**2 - (sample**2).sum() / n
    shrink = 1.0 if target_gap <= 0 else float(np.clip(spread / target_gap, 0.0, 1.0))
    covariance = shrink * scale * np.eye(d) + (1 - shrink) * sample
    values, vectors = np.linalg.eigh(covariance)
    whitening = (vectors * (1 / np.sqrt(np.maximum(values, 1e-12 * values.max())))) @ vectors.T
    whitening16 = whitening.astype(np.float16)
    return GaussianStats(whitening16, (means @ whitening16.astype(np.float64).T).astype(np.float16))


def cross_fit_distances(features: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each example's distance under statistics fitted without its fold (folds stratified by class,
    so a class keeps examples on both sides where it has two or more)."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(labels), dtype=int)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        fold_of[rng.permutation(rows)] = np.arange(len(rows)) % folds
    scores = np.zeros(len(labels), np.float32)
    for fold in range(folds):
        held = fold_of == fold
        if held.any() and (~held).any():
            scores[held] = fit_gaussian(features[~held], labels[~held]).distances(features[held])
    return scores


@dataclass
class DistanceCalibration:
    """Distance (ascending) -> share of in-scope calibration examples at least as far (descending),
    the service's reading of the distance (DistanceCalibration.cs, the same interpolation)."""

    distances: list[float]
    p_values: list[float]
    examples: int
    method: str
    tail: str | None = None  # LOG_NORMAL for a fitted curve, None for the empirical one

    @staticmethod
    def from_scores(scores: np.ndarray, method: str, points: int = CURVE_POINTS) -> "DistanceCalibration":
        """The curve of out-of-sample in-scope `scores`: empirical (`empirical`) from PARAMETRIC_BELOW
        of them, else a log-normal fit (`log_normal`)."""
        if len(scores) < PARAMETRIC_BELOW:
            return DistanceCalibration.log_normal(scores, method, points)
        return DistanceCalibration.empirical(scores, method, points)

    @staticmethod
    def empirical(scores: np.ndarray, method: str, points: int = CURVE_POINTS) -> "DistanceCalibration":
        """Points of the conformal p-value curve: at the j-th largest score, j / (n + 1) of them (and
        the new input) are at least as far."""
        ordered = np.sort(scores.astype(np.float64))[::-1]
        n = len(ordered)
        ranks = np.unique(np.round(np.geomspace(1, max(1, n // 2), points)).astype(int))
        pairs: dict[float, float] = {}
        for j in ranks[::-1]:  # ascending distance
            pairs.setdefault(round(float(ordered[j - 1]), 6), j / (n + 1))
        distances = sorted(pairs)
        return DistanceCalibration(distances, [round(pairs[d], 9) for d in distances], n, method)

    @staticmethod
    def log_normal(scores: np.ndarray, method: str, points: int = CURVE_POINTS) -> "DistanceCalibration":
        """Points of the upper tail of a log-normal fitted to `scores` (p from 0.5 to 1e-4)."""
        logs = np.log(np.maximum(scores.astype(np.float64), 1e-12))
        centre, spread = float(logs.mean()), float(max(logs.std(ddof=1) if len(logs) > 1 else 0.0, 1e-6))
        p_values = np.geomspace(0.5, 1e-4, points)
        distances = [round(math.exp(centre + spread * NormalDist().inv_cdf(1 - p)), 6) for p in p_values]
        fitted = f"{method}; log-normal fit to {len(scores)} distances"
        return DistanceCalibration(distances, [round(float(p), 9) for p in p_values], len(scores), fitted, LOG_NORMAL)

    def default_rejection(self) -> float:
        """The in-scope rejection rate aimed at when none is asked for: FEW_EXAMPLES_REJECTION on a
        fitted curve, DEFAULT_REJECTION on an empirical one."""
        return FEW_EXAMPLES_REJECTION if self.tail == LOG_NORMAL else DEFAULT_REJECTION

    def threshold(self, target: float) -> float:
        """The threshold (p-value) that aims at the in-scope rejection rate `target`: `target` itself
        on a fitted curve, the Wilson-bounded one (`threshold_for`) on an empirical curve."""
        return target if self.tail == LOG_NORMAL else threshold_for(target, self.examples)

    def rate_upper_bound(self, rate: float) -> float:
        """One-sided 95% upper bound of the in-scope rejection rate `rate` measured on the calibration
        examples. A fitted curve's rate is what the fit says; its uncertainty is that of the fitted
        quantile (standard error sqrt(1/n + z^2 / (2(n - 1))) in deviations)."""
        n = self.examples
        if self.tail != LOG_NORMAL:
            return upper_bound(rate, n)
        if n < 3 or rate <= 0:
            return 1.0
        z = NormalDist().inv_cdf(1 - rate)
        error = math.sqrt(1 / n + z * z / (2 * (n - 1)))
        return min(1.0, 1 - NormalDist().cdf(z - 1.645 * error))

    def p_value(self, distance: np.ndarray) -> np.ndarray:
        d = np.asarray(distance, dtype=np.float64)
        xs, logp = np.array(self.distances), np.log(self.p_values)
        first = np.where(xs[0] > 0, 1 - (1 - self.p_values[0]) * np.clip(d, 0, None) / max(xs[0], 1e-12), self.p_values[0])
        upper = np.clip(np.searchsorted(xs, d), 1, len(xs) - 1)
        lower = upper - 1
        slope = (logp[upper] - logp[lower]) / (xs[upper] - xs[lower])
        inside = np.exp(logp[lower] + slope * (d - xs[lower]))
        return np.where(d <= xs[0], first, inside)

    def manifest(self) -> dict:
        entry = {"distances": self.distances, "pValues": self.p_values, "examples": self.examples, "method": self.method}
        return entry | ({"tail": self.tail} if self.tail else {})

    @staticmethod
    def from_manifest(calibration: dict) -> "DistanceCalibration":
        return DistanceCalibration(calibration["distances"], calibration["pValues"], int(calibration.get("examples", 0)), calibration.get("method", ""), calibration.get("tail"))


def upper_bound(rate: float, n: int, z: float = 1.645) -> float:
    """One-sided 95% Wilson upper bound of a proportion observed as `rate` in `n` trials."""
    if n == 0:
        return 1.0
    centre = rate + z * z / (2 * n)
    spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def threshold_for(target: float, examples: int) -> float:
    """The largest threshold (p-value) whose in-scope rejection rate stays within `target` with 95%
    confidence: a conformal p-value is below `t` for a share `t` of held-out in-scope inputs, and a
    share measured on `examples` calibration examples is only known up to its Wilson bound. With few
    examples (an own task's 60 rows) the bound is loose and the threshold is set to `target` / 2 at
    least, so that the fallback still answers far-off inputs."""
    low, high = 0.0, target
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if upper_bound(mid, examples) <= target else (low, mid)
    return max(math.floor(low * 1e6) / 1e6, target / 2)  # rounded down: the bound stays within the target


@dataclass
class NeighbourStats:
    """What the head graph stores for the head's own features: unit-length [CLS] states of training
    examples, rounded to float16 (their storage), so that scores computed here equal the graph's."""

    references: np.ndarray  # [n, width], unit rows, float16

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Cosine distance (1 - cosine, at least COSINE_FLOOR) of each row to its nearest reference,
        float32 as the graph computes it."""
        x = features.astype(np.float32)
        x = x / np.sqrt((x * x).sum(1, keepdims=True))
        nearest = np.float32(1) - (x @ self.references.astype(np.float32).T).max(1)
        return np.maximum(nearest, np.float32(COSINE_FLOOR)).astype(np.float32)


def neighbour_rows(labels: np.ndarray, limit: int = NEIGHBOURS, seed: int = 0) -> np.ndarray:
    """Which rows a combined measure keeps as neighbours: all when there are at most `limit`, else about
    `limit` drawn with `seed`, each class at its share and at least one row (ascending)."""
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        rows.append(members[: max(1, round(limit * len(members) / len(labels)))])
    return np.sort(np.concatenate(rows))


def fit_neighbours(features: np.ndarray, labels: np.ndarray, limit: int = NEIGHBOURS, seed: int = 0) -> NeighbourStats:
    """The `neighbour_rows` of `features`, scaled to unit length."""
    chosen = features[neighbour_rows(labels, limit, seed)].astype(np.float64)
    return NeighbourStats((chosen / np.linalg.norm(chosen, axis=1, keepdims=True)).astype(np.float16))


# Weights of the combined measure's standardised log-distances: the pretrained layer mean; the head's
# [CLS] state against its class means; the same against its nearest training example. Half for the
# pretrained features, half for the head's own, shared by its two readings: on SNIPS's held-out part
# the nearest example alone caught more flight queries (61 vs 43% at 1%, mean of four draws of the
# references) but less of banking (93 vs 95%) and questions (94 vs 96%); the two readings together
# sit between on flights (57%) and keep the rest, and vary less with the draw (bench/experiments/
# README.md, "held-out part", the head's own features read twice).
COMBINED_WEIGHTS = (0.5, 0.25, 0.25)


def measure_weights(values: list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    """Three weights for the combined measure's parts (pretrained, class means, nearest example),
    finite and non-negative with a positive sum, scaled to sum to 1. A task whose pretrained features
    cannot tell its out-of-scope requests apart (CLINC150: its 150 intents span ten domains) may read
    its head's features alone: 0, 1/2, 1/2."""
    if len(values) != 3:
        raise ValueError(f"the combined measure has three parts (pretrained, class means, nearest example); {len(values)} weights given")
    if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"combined-measure weights must be finite, non-negative and not all 0: {list(values)}")
    total = float(sum(values))
    return tuple(float(v) / total for v in values)  # type: ignore[return-value]


@dataclass
class HeadFeatureMeasure:
    """The head's own evidence in a combined measure: its [CLS] state (the classifier's input, after the
    head's fine-tuned layers) read twice, against the class means of the examples it trained on
    (`gaussian`) and against the nearest of them (`neighbours`); and the centre and spread of the three
    log-distances (pretrained, class means, nearest example) on held-out examples (`combine`)."""

    gaussian: GaussianStats
    neighbours: NeighbourStats
    log_centres: tuple[float, float, float]
    log_spreads: tuple[float, float, float]
    weights: tuple[float, float, float]  # `measure_weights`

    def head_distances(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The [CLS] states' distances to the nearest class mean and to the nearest training example."""
        return self.gaussian.distances(features), self.neighbours.distances(features)

    def manifest(self) -> dict:
        """What `head.outOfDomain.combined` records (informative: the graph computes it)."""
        kinds = [
            {"features": "trunk layer mean, unit length", "distance": "squared Mahalanobis to the nearest class mean"},
            {"features": "head [CLS] state (the classifier's input)", "distance": "squared Mahalanobis to the nearest class mean", "width": int(self.gaussian.whitening.shape[0])},
            {"features": "head [CLS] state (the classifier's input)", "distance": "cosine to the nearest training example",
             "width": int(self.neighbours.references.shape[1]), "references": int(self.neighbours.references.shape[0])},
        ]
        return {
            "rule": "exp of the weighted mean standardised log-distance",
            "measures": [
                kind | {"weight": weight, "logCentre": round(centre, 6), "logSpread": round(spread, 6)}
                for kind, weight, centre, spread in zip(kinds, self.weights, self.log_centres, self.log_spreads)
            ],
        }


def fit_head_measure(
    head_train: np.ndarray, labels: np.ndarray, pretrained_held: np.ndarray, head_held: np.ndarray, seed: int = 0, weights: tuple[float, float, float] = COMBINED_WEIGHTS,
) -> HeadFeatureMeasure:
    """The head's statistics from the [CLS] states `head_train` of the examples it trained on (class
    `labels`), and every log-distance's centre and spread from the held-out examples' pretrained
    distances `pretrained_held` and [CLS] states `head_held`; the parts weighted by `weights`."""
    gaussian, neighbours = fit_gaussian(head_train, labels), fit_neighbours(head_train, labels, seed=seed)
    scales = [log_scale(d) for d in (pretrained_held, gaussian.distances(head_held), neighbours.distances(head_held))]
    return HeadFeatureMeasure(gaussian, neighbours, tuple(c for c, _ in scales), tuple(s for _, s in scales), measure_weights(weights))  # type: ignore[arg-type]


LOG_FLOOR = 1e-12  # squared distances are clamped here before the log (rounding can make a tiny one negative)


def standardised_logs(distances: np.ndarray, centre: float, spread: float) -> np.ndarray:
    """(log d - centre) / spread in float32, as the graph computes it."""
    logs = np.log(np.maximum(distances.astype(np.float32), np.float32(LOG_FLOOR)))
    return ((logs - np.float32(centre)) / np.float32(spread)).astype(np.float32)


def combine(pretrained: np.ndarray, head_features: np.ndarray, measure: HeadFeatureMeasure) -> np.ndarray:
    """The combined distance the graph outputs for pretrained distances and [CLS] states `head_features`:
    exp of the weighted mean (the measure's `weights`) of the three standardised log-distances, positive and
    increasing like a distance. A mean, not the largest: the largest of several measures has the tails
    of all, so at the same held-out in-scope rate its threshold sits higher and it caught less of every
    other-domain source (bench/experiments/README.md, "held-out part")."""
    parts = (pretrained, *measure.head_distances(head_features))
    z = np.zeros(len(pretrained), np.float32)
    for weight, distances, centre, spread in zip(measure.weights, parts, measure.log_centres, measure.log_spreads):
        z = z + standardised_logs(distances, centre, spread) * np.float32(weight)
    return np.exp(z).astype(np.float32)


def log_scale(distances: np.ndarray) -> tuple[float, float]:
    """Centre and spread (mean, deviation) of the log-distances."""
    logs = np.log(np.maximum(distances.astype(np.float64), LOG_FLOOR))
    return float(logs.mean()), float(max(logs.std(ddof=1) if len(logs) > 1 else 0.0, 1e-6))


def classifier_input(model: onnx.ModelProto, logits: str) -> str:
    """The tensor the head's classifier reads (its [CLS] state): the data input of the matmul that
    produces `logits`, through a bias Add."""
    producers = {o: n for n in model.graph.node for o in n.output}
    constants = {i.name for i in model.graph.initializer}
    node = producers.get(logits)
    while node is not None and node.op_type == "Add":
        node = next((producers[i] for i in node.input if i in producers and i not in constants and producers[i].op_type != "Constant"), None)
    if node is None or node.op_type not in ("Gemm", "MatMul", "MatMulIntegerToFloat"):
        raise ValueError(f"the head graph's output '{logits}' is not produced by a classifier matmul (Gemm or MatMul): its [CLS] features cannot be found")
    return node.input[0]


def _distance_nodes(features: str, stats: GaussianStats, tag: str, output: str) -> tuple[list, list]:
    """Nodes and initialisers computing `output`: each row's squared distance of `features` [batch, width]
    to the nearest whitened class mean of `stats`."""
    p = _PREFIX + tag
    inits = [
        numpy_helper.from_array(stats.whitening.T.copy(), p + "whitening_t"),
        numpy_helper.from_array(stats.means.T.copy(), p + "means_t"),
        numpy_helper.from_array((stats.means.astype(np.float32) ** 2).sum(1), p + "means_sq"),
    ]
    node = helper.make_node
    nodes = [
        node("Cast", [p + "whitening_t"], [p + "w32"], to=TensorProto.FLOAT),
        node("Cast", [p + "means_t"], [p + "m32"], to=TensorProto.FLOAT),
        node("MatMul", [features, p + "w32"], [p + "z"]),
        node("Mul", [p + "z", p + "z"], [p + "z2"]),
        node("ReduceSum", [p + "z2", _PREFIX + "axis1"], [p + "zz"], keepdims=1),
        node("MatMul", [p + "z", p + "m32"], [p + "zm"]),
        node("Mul", [p + "zm", _PREFIX + "two"], [p + "zm2"]),
        node("Sub", [p + "zz", p + "zm2"], [p + "partial"]),
        node("Add", [p + "partial", p + "means_sq"], [p + "squared"]),
        node("ReduceMin", [p + "squared"], [output], axes=[1], keepdims=0),
    ]
    return nodes, inits


def _neighbour_nodes(features: str, stats: NeighbourStats, tag: str, output: str) -> tuple[list, list]:
    """Nodes and initialisers computing `output`: each row's cosine distance of `features` [batch, width]
    to its nearest reference of `stats`."""
    p = _PREFIX + tag
    inits = [
        numpy_helper.from_array(stats.references.T.copy(), p + "references_t"),
        numpy_helper.from_array(np.array(1.0, np.float32), p + "one"),
        numpy_helper.from_array(np.array(COSINE_FLOOR, np.float32), p + "cosine_floor"),
    ]
    node = helper.make_node
    nodes = [
        node("Cast", [p + "references_t"], [p + "r32"], to=TensorProto.FLOAT),
        node("Mul", [features, features], [p + "x2"]),
        node("ReduceSum", [p + "x2", _PREFIX + "axis1"], [p + "xx"], keepdims=1),
        node("Sqrt", [p + "xx"], [p + "length"]),
        node("Div", [features, p + "length"], [p + "unit"]),
        node("MatMul", [p + "unit", p + "r32"], [p + "cosines"]),
        node("ReduceMax", [p + "cosines"], [p + "nearest_cosine"], axes=[1], keepdims=0),
        node("Sub", [p + "one", p + "nearest_cosine"], [p + "cosine_distance"]),
        node("Max", [p + "cosine_distance", p + "cosine_floor"], [output]),
    ]
    return nodes, inits


def _standardised_log_nodes(distance: str, centre: float, spread: float, tag: str) -> tuple[list, list, str]:
    p = _PREFIX + tag
    inits = [numpy_helper.from_array(np.array(centre, np.float32), p + "centre"), numpy_helper.from_array(np.array(spread, np.float32), p + "spread")]
    node = helper.make_node
    nodes = [
        node("Max", [distance, _PREFIX + "floor"], [p + "clamped"]),
        node("Log", [p + "clamped"], [p + "log"]),
        node("Sub", [p + "log", p + "centre"], [p + "centred"]),
        node("Div", [p + "centred", p + "spread"], [p + "standard"]),
    ]
    return nodes, inits, p + "standard"


def add_distance_output(
    model: onnx.ModelProto, stats: GaussianStats, hidden_input: str, mask_input: str, head_measure: HeadFeatureMeasure | None = None, logits: str = "logits",
) -> onnx.ModelProto:
    """The head graph with a second output `ood_distance` [batch]: the hidden states of `hidden_input`
    (the head's own input, or DISTANCE_INPUT, which is added, for another trunk layer) mean-pooled
    over the mask, scaled to unit length, whitened, squared distance to the nearest whitened class mean.
    With `head_measure`, the output is instead `combine` of that distance and the head's own [CLS]
    state's two (`classifier_input` of `logits`). Statistics are float16 initialisers (half the bytes) cast
    to float32. A graph that has the output already gets new statistics."""
    model = strip_distance_output(model)
    graph = model.graph
    names = {i.name for i in graph.input}
    if mask_input not in names:
        graph.input.append(helper.make_tensor_value_info(mask_input, TensorProto.INT64, ["batch", "sequence"]))
    if hidden_input not in names:
        width = stats.whitening.shape[0]
        graph.input.append(helper.make_tensor_value_info(hidden_input, TensorProto.FLOAT, ["batch", "sequence", width]))
    p = _PREFIX
    # A plain distance writes its output directly, in the node and initialiser order of earlier toolkits:
    # a recalibrated head without the head's features gets the same bytes (the fixture's test checks that).
    pretrained = DISTANCE_OUTPUT if head_measure is None else p + "nearest"
    nodes, inits = _distance_nodes(p + "pooled", stats, "", pretrained)
    graph.initializer.extend(inits + [
        numpy_helper.from_array(np.array([1], np.int64), p + "axis1"),
        numpy_helper.from_array(np.array([2], np.int64), p + "axis2"),
        numpy_helper.from_array(np.array(2.0, np.float32), p + "two"),
    ])
    node = helper.make_node
    graph.node.extend([
        node("Cast", [mask_input], [p + "mask_f"], to=TensorProto.FLOAT),
        node("Unsqueeze", [p + "mask_f", p + "axis2"], [p + "mask_e"]),
        node("Mul", [hidden_input, p + "mask_e"], [p + "masked"]),
        node("ReduceSum", [p + "masked", p + "axis1"], [p + "summed"], keepdims=0),
        node("ReduceSum", [p + "mask_f", p + "axis1"], [p + "count"], keepdims=1),
        node("Div", [p + "summed", p + "count"], [p + "mean"]),
        node("Mul", [p + "mean", p + "mean"], [p + "mean_sq"]),
        node("ReduceSum", [p + "mean_sq", p + "axis1"], [p + "length_sq"], keepdims=1),
        node("Sqrt", [p + "length_sq"], [p + "length"]),
        node("Div", [p + "mean", p + "length"], [p + "pooled"]),
    ])
    graph.node.extend(nodes)
    if head_measure is not None:
        graph.initializer.append(numpy_helper.from_array(np.array(LOG_FLOOR, np.float32), p + "floor"))
        features = classifier_input(model, logits)
        gaussian_nodes, gaussian_inits = _distance_nodes(features, head_measure.gaussian, "head_", p + "head_nearest")
        neighbour_nodes, neighbour_inits = _neighbour_nodes(features, head_measure.neighbours, "near_", p + "near_nearest")
        graph.node.extend(gaussian_nodes + neighbour_nodes)
        graph.initializer.extend(gaussian_inits + neighbour_inits)
        total = ""  # the running weighted sum, in the node order every toolkit since 2.4.0 writes
        for i, (distance, weight, centre, spread) in enumerate(zip((pretrained, p + "head_nearest", p + "near_nearest"), head_measure.weights, head_measure.log_centres, head_measure.log_spreads)):
            nodes, inits, standard = _standardised_log_nodes(distance, centre, spread, f"part{i}_")
            inits.append(numpy_helper.from_array(np.array(weight, np.float32), f"{p}part{i}_weight"))
            weighted = f"{p}part{i}_weighted"
            nodes.append(node("Mul", [standard, f"{p}part{i}_weight"], [weighted]))
            if total:
                nodes.append(node("Add", [total, weighted], [f"{p}sum{i}"]))
                weighted = f"{p}sum{i}"
            total = weighted
            graph.node.extend(nodes)
            graph.initializer.extend(inits)
        graph.node.append(node("Exp", [total], [DISTANCE_OUTPUT]))
    graph.output.append(helper.make_tensor_value_info(DISTANCE_OUTPUT, TensorProto.FLOAT, ["batch"]))
    onnx.checker.check_model(model)
    return model


def strip_distance_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the graph without what `add_distance_output` added (idempotent re-calibration)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    keep_nodes = [n for n in graph.node if not any(o.startswith(_PREFIX) or o == DISTANCE_OUTPUT for o in n.output)]
    keep_inits = [i for i in graph.initializer if not i.name.startswith(_PREFIX)]
    keep_outputs = [o for o in graph.output if o.name != DISTANCE_OUTPUT]
    keep_inputs = [i for i in graph.input if i.name != DISTANCE_INPUT]
    for field, kept in ((graph.node, keep_nodes), (graph.initializer, keep_inits), (graph.output, keep_outputs), (graph.input, keep_inputs)):
        del field[:]
        field.extend(kept)
    return model
