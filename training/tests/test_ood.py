"""The out-of-domain measure (mtbert.ood) and the calibration of a task (mtbert.calibrate) on
synthetic features: what the numbers must be, independent of any dataset."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from mtbert.calibrate import beats_majority, scaling_temperature, cross_fitted_ece, expected_calibration_error, fit_temperature
from mtbert.ood import (
    COMBINED_WEIGHTS,
    COSINE_FLOOR,
    DISTANCE_INPUT, DISTANCE_OUTPUT, DistanceCalibration, add_distance_output, classifier_input, combine, cross_fit_distances, fit_gaussian, fit_head_measure, fit_neighbours, measure_weights, neighbour_rows,
    strip_distance_output, threshold_for, upper_bound,
)
from mtbert.onnx_eval import Graph


def clusters(n_per_class: int = 200, classes: int = 4, dims: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (classes, dims))
    scales = np.linspace(0.2, 2.0, dims)  # anisotropic: Mahalanobis must weigh the axes
    labels = np.repeat(np.arange(classes), n_per_class)
    return (centres[labels] + rng.normal(0, 1, (len(labels), dims)) * scales).astype(np.float32), labels


def test_distance_is_mahalanobis_to_the_nearest_class() -> None:
    x, y = clusters(n_per_class=2000)
    stats = fit_gaussian(x, y)
    means = np.stack([x[y == c].mean(0) for c in range(4)])
    covariance = np.cov((x - means[y]).T, bias=True)
    point = means[2] + np.array([0.5] * 8)
    expected = min(float((point - m) @ np.linalg.solve(covariance, point - m)) for m in means)
    # float16 storage, and Ledoit-Wolf shrinkage (0.2% towards the identity with 8000 rows), which
    # widens the narrowest axis (scale 0.2) by a few percent: within 5%.
    assert stats.distances(point[None, :].astype(np.float32))[0] == pytest.approx(expected, rel=0.05)


def test_far_points_score_higher_than_held_out_in_scope_points() -> None:
    x, y = clusters()
    stats = fit_gaussian(x[::2], y[::2])
    inside = stats.distances(x[1::2])
    outside = stats.distances(np.random.default_rng(1).normal(0, 12, (200, 8)).astype(np.float32))
    assert np.median(outside) > 10 * np.median(inside)


def test_shrinkage_makes_few_examples_usable() -> None:
    x, y = clusters(n_per_class=3, dims=32)  # 12 rows in 32 dimensions: the sample covariance is singular
    distances = fit_gaussian(x, y).distances(x)
    assert np.isfinite(distances).all()


def test_cross_fit_scores_every_row_with_statistics_that_did_not_see_it() -> None:
    x, y = clusters(n_per_class=50)
    out_of_fold = cross_fit_distances(x, y, folds=5, seed=0)
    in_sample = fit_gaussian(x, y).distances(x)
    assert (out_of_fold > 0).all()
    assert out_of_fold.mean() > in_sample.mean()  # held-out rows are farther: what the threshold must expect
    assert np.array_equal(out_of_fold, cross_fit_distances(x, y, folds=5, seed=0))


def test_calibration_curve_is_a_conformal_p_value() -> None:
    scores = np.arange(1, 1001, dtype=np.float64)  # the j-th largest is 1001 - j
    curve = DistanceCalibration.from_scores(scores, "test")
    assert curve.distances == sorted(curve.distances)
    assert curve.p_values == sorted(curve.p_values, reverse=True)
    assert curve.p_value(np.array([1000.0]))[0] == pytest.approx(1 / 1001)
    assert curve.p_value(np.array([991.0]))[0] == pytest.approx(10 / 1001)
    assert curve.p_value(np.array([5000.0]))[0] < 1 / 1001  # beyond the last point it keeps falling
    assert curve.p_value(np.array([0.0]))[0] == pytest.approx(1.0)
    # On fresh draws of the same distribution about 1% fall below 0.01.
    fresh = np.random.default_rng(0).uniform(0.5, 1000.5, 200_000)
    assert (curve.p_value(fresh) < 0.01).mean() == pytest.approx(0.01, abs=0.002)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_few_calibration_examples_give_a_log_normal_curve_whose_threshold_is_the_target() -> None:
    rng = np.random.default_rng(0)
    scores = np.exp(rng.normal(5.0, 0.4, 60))  # an own task's 60 cross-fitted distances
    curve = DistanceCalibration.from_scores(scores, "test")
    assert curve.tail == "log-normal" and curve.examples == 60
    logs = np.log(scores)
    at_one_percent = np.exp(logs.mean() + 2.3263 * logs.std(ddof=1))
    assert curve.p_value(np.array([at_one_percent]))[0] == pytest.approx(0.01, rel=0.02)
    assert curve.threshold(0.01) == 0.01  # the fit's rate, not the Wilson-bounded one of 60 examples (0.005)
    assert curve.rate_upper_bound(0.01) > 0.01  # the fit's own uncertainty
    assert DistanceCalibration.log_normal(np.exp(rng.normal(5.0, 0.4, 600)), "t").rate_upper_bound(0.01) < curve.rate_upper_bound(0.01)
    # Fresh draws of the same distribution: about 1% beyond the threshold.
    fresh = np.exp(rng.normal(5.0, 0.4, 100_000))
    assert (curve.p_value(fresh) < curve.threshold(0.01)).mean() == pytest.approx(0.01, abs=0.01)
    # The manifest carries the tail, so `bundle retarget` knows which threshold rule applies.
    again = DistanceCalibration.from_manifest(curve.manifest())
    assert again.tail == "log-normal" and again.threshold(0.02) == 0.02
    # Asked for no rate, few examples aim at 2% (near topics lie as close as the task's own tail), many at 1%.
    assert (curve.default_rejection(), DistanceCalibration.empirical(rng.normal(size=1000), "").default_rejection()) == (0.02, 0.01)
    empirical = DistanceCalibration.from_scores(np.arange(1, 1001, dtype=np.float64), "test")
    assert empirical.tail is None and "tail" not in empirical.manifest()
    assert DistanceCalibration.from_manifest(empirical.manifest()).threshold(0.01) == threshold_for(0.01, 1000)


def test_upper_bound_is_above_the_rate_and_tightens_with_n() -> None:
    assert upper_bound(0.01, 100) > upper_bound(0.01, 10_000) > 0.01
    assert upper_bound(0.0, 60) > 0


def head_graph(hidden: int, classes: int) -> onnx.ModelProto:
    """A stand-in head: logits = [CLS] @ W (what matters here is the graph the distance joins)."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [hidden, classes], np.ones(hidden * classes, np.float32))
    nodes = [
        helper.make_node("Gather", ["hidden_states", "zero"], ["cls"], axis=1),
        helper.make_node("MatMul", ["cls", "w"], ["logits"]),
    ]
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    graph = helper.make_graph(
        nodes, "head",
        [helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, ["batch", "sequence", hidden]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [weight, zero],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_head_graph_distance_equals_the_python_measure(tmp_path) -> None:  # noqa: ANN001
    x, y = clusters(dims=16)
    stats = fit_gaussian(x, y)
    model = add_distance_output(head_graph(16, 4), stats, "hidden_states", "attention_mask")
    path = tmp_path / "head.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(3)
    hidden = torch.tensor(rng.normal(0, 3, (3, 5, 16)), dtype=torch.float32)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    outputs = Graph(path).run({"hidden_states": hidden, "attention_mask": mask})
    pooled = np.stack([hidden[i, : int(mask[i].sum())].mean(0).numpy() for i in range(3)])
    np.testing.assert_allclose(outputs[DISTANCE_OUTPUT].numpy(), stats.distances(unit(pooled)), rtol=1e-4)
    # The graph scales the pooled vector to unit length: a longer vector of the same direction is as near.
    doubled = Graph(path).run({"hidden_states": hidden * 2, "attention_mask": mask})
    np.testing.assert_allclose(doubled[DISTANCE_OUTPUT].numpy(), outputs[DISTANCE_OUTPUT].numpy(), rtol=1e-4)
    assert list(outputs) == ["logits", DISTANCE_OUTPUT]
    # Calibrating again replaces the statistics instead of adding a second output.
    again = add_distance_output(model, fit_gaussian(x[:400], y[:400]), "hidden_states", "attention_mask")
    assert [o.name for o in again.graph.output] == ["logits", DISTANCE_OUTPUT]
    assert len(strip_distance_output(again).graph.node) == 2


def test_temperature_recovers_the_scale_of_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 5))
    gold = np.array([rng.choice(5, p=np.exp(row) / np.exp(row).sum()) for row in true_logits])
    overconfident = true_logits * 3  # calibrated at T = 3
    assert fit_temperature(overconfident, gold) == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(overconfident, gold)
    assert before > 15
    # Scored on halves of 2000 rows, where even the true probabilities show an ECE of about 3 (bin noise).
    assert cross_fitted_ece(overconfident, gold) < before / 4


def test_a_head_must_beat_its_majority_class_by_a_significant_margin() -> None:
    assert not beats_majority(51.6, 52.7, 277)  # RTE-like: below the majority
    assert not beats_majority(70.0, 69.1, 1043)  # CoLA-like: within noise
    assert beats_majority(85.9, 50.9, 872)
    assert not beats_majority(60.0, 50.0, 20)  # ten points on twenty examples is noise


def test_a_distance_at_another_layer_reads_its_own_input(tmp_path) -> None:  # noqa: ANN001
    x, y = clusters(dims=16)
    stats = fit_gaussian(x, y)
    model = add_distance_output(head_graph(16, 4), stats, DISTANCE_INPUT, "attention_mask")
    path = tmp_path / "head.onnx"
    onnx.save(model, str(path))
    graph = Graph(path)
    assert graph.input_names == ["hidden_states", "attention_mask", DISTANCE_INPUT]
    rng = np.random.default_rng(4)
    branch, other = (torch.tensor(rng.normal(0, 3, (2, 4, 16)), dtype=torch.float32) for _ in range(2))
    mask = torch.ones(2, 4, dtype=torch.long)
    outputs = graph.run({"hidden_states": branch, "attention_mask": mask, DISTANCE_INPUT: other})
    np.testing.assert_allclose(outputs[DISTANCE_OUTPUT].numpy(), stats.distances(unit(other.mean(1).numpy())), rtol=1e-4)
    assert [i.name for i in strip_distance_output(model).graph.input] == ["hidden_states", "attention_mask"]


def test_the_threshold_keeps_the_bound_of_the_rejection_within_the_target() -> None:
    for examples in (500, 4478, 15_000):
        threshold = threshold_for(0.01, examples)
        assert upper_bound(threshold, examples) <= 0.01 + 1e-9 or threshold == 0.005
        assert threshold < 0.01
    assert threshold_for(0.01, 15_000) > threshold_for(0.01, 4478)  # more calibration examples, a tighter bound
    assert threshold_for(0.01, 60) == 0.005  # too few to bound: half the target, so far-off inputs still fall back


def test_no_temperature_is_fitted_when_dev_has_no_error() -> None:
    """A perfectly separated dev split would drive T towards 0 (every score 1.0): nothing to calibrate against."""
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 5.0]] * 10)
    gold = np.array([0, 1, 2] * 10)
    assert scaling_temperature(logits, gold) == 1.0
    gold[0] = 1  # one mistake: now there is something to fit
    assert scaling_temperature(logits, gold) != 1.0


def test_the_combined_distance_of_the_graph_equals_the_python_measure(tmp_path) -> None:  # noqa: ANN001
    """Pooled trunk features against their class means, and the head's own [CLS] state (the classifier's
    input) against its class means and its nearest training example, standardised on held-out distances
    and averaged with their weights; exp keeps it positive."""
    x, y = clusters(dims=16)
    cls_x, cls_y = clusters(dims=16, seed=5)
    pooled_stats = fit_gaussian(unit(x), y)
    measure = fit_head_measure(cls_x, cls_y, pooled_stats.distances(unit(x)), cls_x)
    assert len(measure.neighbours.references) == len(cls_x)  # fewer than NEIGHBOURS: all of them
    model = add_distance_output(head_graph(16, 4), pooled_stats, DISTANCE_INPUT, "attention_mask", measure)
    assert classifier_input(model, "logits") == "cls"
    path = tmp_path / "head.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(6)
    branch, other = (torch.tensor(rng.normal(0, 3, (4, 5, 16)), dtype=torch.float32) for _ in range(2))
    mask = torch.ones(4, 5, dtype=torch.long)
    outputs = Graph(path).run({"hidden_states": branch, "attention_mask": mask, DISTANCE_INPUT: other})
    expected = combine(pooled_stats.distances(unit(other.mean(1).numpy())), branch[:, 0].numpy(), measure)
    np.testing.assert_allclose(outputs[DISTANCE_OUTPUT].numpy(), expected, rtol=1e-4)
    # Each measure alone raises the combined distance: an input far under one is far.
    near, far = unit(x[:1]), unit(x[:1]) * 0 + 1 / 4
    base = combine(pooled_stats.distances(near), cls_x[:1], measure)[0]
    assert combine(pooled_stats.distances(far), cls_x[:1], measure)[0] > base
    assert combine(pooled_stats.distances(near), cls_x[:1] + 50, measure)[0] > base  # far from the class means
    turned = cls_x[:1] @ np.linalg.qr(rng.normal(0, 1, (16, 16)))[0]  # as long, another direction: far from every example
    parts = measure.head_distances(turned)
    assert parts[1][0] > measure.head_distances(cls_x[:1])[1][0]
    recorded = measure.manifest()["measures"]
    assert [m["weight"] for m in recorded] == list(COMBINED_WEIGHTS) and sum(COMBINED_WEIGHTS) == 1
    assert recorded[1]["width"] == 16 and recorded[2]["references"] == len(cls_x)
    # Other weights (the head's features alone: CLINC150) are what the graph computes and records.
    alone = fit_head_measure(cls_x, cls_y, pooled_stats.distances(unit(x)), cls_x, weights=(0, 1, 1))
    assert alone.weights == (0.0, 0.5, 0.5) and [m["weight"] for m in alone.manifest()["measures"]] == [0.0, 0.5, 0.5]
    onnx.save(add_distance_output(head_graph(16, 4), pooled_stats, DISTANCE_INPUT, "attention_mask", alone), str(path))
    outputs = Graph(path).run({"hidden_states": branch, "attention_mask": mask, DISTANCE_INPUT: other})
    expected = combine(pooled_stats.distances(unit(other.mean(1).numpy())), branch[:, 0].numpy(), alone)
    np.testing.assert_allclose(outputs[DISTANCE_OUTPUT].numpy(), expected, rtol=1e-4)
    assert combine(pooled_stats.distances(far), cls_x[:1], alone)[0] == combine(pooled_stats.distances(near), cls_x[:1], alone)[0]  # the pretrained part weighs nothing
    # Calibrating again without the head's features leaves one plain distance.
    plain = add_distance_output(model, pooled_stats, DISTANCE_INPUT, "attention_mask")
    assert not any(i.name.startswith(("ood_head_", "ood_near_", "ood_part")) for i in plain.graph.initializer)
    assert len(strip_distance_output(model).graph.node) == 2


def test_combined_measure_weights_are_three_non_negative_shares() -> None:
    assert measure_weights([0, 1, 1]) == (0.0, 0.5, 0.5) and measure_weights(COMBINED_WEIGHTS) == COMBINED_WEIGHTS
    for bad, message in (([1, 1], "three parts"), ([0, 0, 0], "not all 0"), ([-1, 1, 1], "non-negative"), ([math.inf, 1, 1], "finite")):
        with pytest.raises(ValueError, match=message):
            measure_weights(bad)


def test_nearest_example_references_keep_every_class_and_the_limit() -> None:
    """A seeded draw of about `limit` training rows, each class at its share and never left out; a
    reference's own row is at distance 0 up to float16 rounding, clamped to the floor."""
    labels = np.array([0] * 400 + [1] * 95 + [2] * 5)
    rows = neighbour_rows(labels, limit=50)
    assert 49 <= len(rows) <= 51 and len(set(rows.tolist())) == len(rows)
    assert np.bincount(labels[rows]).tolist() == [40, 10, 1]  # shares held, the small class kept
    np.testing.assert_array_equal(neighbour_rows(labels, limit=50), rows)
    assert not np.array_equal(neighbour_rows(labels, limit=50, seed=1), rows)
    np.testing.assert_array_equal(neighbour_rows(labels[:30], limit=50), np.arange(30))  # under the limit: all
    features = np.random.default_rng(0).normal(0, 1, (500, 8))
    stats = fit_neighbours(features, labels, limit=50)
    assert stats.references.dtype == np.float16 and len(stats.references) == len(rows)
    np.testing.assert_allclose(np.linalg.norm(stats.references.astype(np.float32), axis=1), 1, atol=1e-3)
    own = stats.distances(features[rows] * 3)  # length does not count; float16 rounding at width 8 leaves < 5e-4
    assert (own >= np.float32(COSINE_FLOOR)).all() and (own < 5e-4).all() and (own == np.float32(COSINE_FLOOR)).any()
    queries = np.random.default_rng(1).normal(0, 1, (20, 8))
    brute = 1 - (unit(queries) @ unit(stats.references.astype(np.float64)).T).max(1)
    np.testing.assert_allclose(stats.distances(queries), np.maximum(brute, COSINE_FLOOR), atol=1e-3)


def test_a_head_whose_output_is_no_classifier_matmul_names_it() -> None:
    model = head_graph(16, 4)
    model.graph.node.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    with pytest.raises(ValueError, match="'probabilities' is not produced by a classifier matmul"):
        classifier_input(model, "probabilities")
