from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from mtbert.checkpoint import BertConfig
from mtbert.cost import head_cost, layer_cost
from mtbert.kinds import kind_named
from mtbert.pipeline import Candidate, TaskSession, choose, score_noise
from mtbert.runs import load_run
from mtbert.encoded import EncodedSet
from mtbert.tokenization import Encoding
from mtbert.train import DistillWeights, Hyper, build_trunk, pad_ids, student_layer_map, train_loop
from mtbert.data import DatasetError, load_task_spec, read_examples


@pytest.fixture(scope="module")
def session(tiny_checkpoint: Path, tiny_data: Path) -> TaskSession:
    return TaskSession.open(tiny_checkpoint, tiny_data, "sst2", max_length=32)


def test_cached_states_equal_the_trunk_outputs(session: TaskSession) -> None:
    train_states, _ = session.states([1, 2])
    trunk = build_trunk(session.checkpoint, 2)
    ids, mask, types = pad_ids(session.train.encodings[:1])
    with torch.no_grad():
        expected = trunk(ids, mask, types)[2][0]
    assert torch.allclose(train_states.layers[2][0], expected, atol=1e-6)


def test_partial_fine_tuning_trains_only_the_top_layers(session: TaskSession) -> None:
    info, head = session.partial(2, Hyper(epochs=2, batch_size=16, lr=1e-3))
    assert (info.branch_layer, info.head_layers) == (2, 1)
    # The head started from pretrained layer 3 (index 2) and moved away from it.
    pretrained = session.checkpoint.weights["encoder.layer.2.output.dense.weight"]
    assert not torch.equal(head.layer[0].output.dense.weight, pretrained)
    assert set(info.metrics) == {"accuracy", "score"}
    # Weights are rounded to float16 precision, as the bundle stores them.
    weight = head.layer[0].output.dense.weight
    assert torch.equal(weight, weight.half().float())


def test_training_is_deterministic(session: TaskSession) -> None:
    _, a = session.partial(2, Hyper(epochs=1, batch_size=16, lr=1e-3, seed=3))
    _, b = session.partial(2, Hyper(epochs=1, batch_size=16, lr=1e-3, seed=3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_distillation_makes_a_shallower_student(session: TaskSession) -> None:
    info, teacher = session.partial(1, Hyper(epochs=1, batch_size=16, lr=1e-3))
    assert info.head_layers == 2
    s_info, student = session.distill(teacher, info, 1, Hyper(epochs=1, batch_size=16, lr=1e-3), DistillWeights())
    assert (s_info.method, s_info.branch_layer, s_info.head_layers, len(student.layer)) == ("distilled", 1, 1, 1)
    with pytest.raises(ValueError, match="1..1 layers"):
        session.distill(teacher, info, 2, Hyper(epochs=1), DistillWeights())


def test_a_thinner_student_is_saved_loaded_and_exported_with_its_own_shape(session: TaskSession, tmp_path: Path) -> None:
    info, teacher = session.partial(1, Hyper(epochs=1, batch_size=16, lr=1e-3))
    s_info, student = session.distill(teacher, info, 2, Hyper(epochs=1, batch_size=16, lr=1e-3), DistillWeights(), tmp_path / "s", width=0.5)
    assert (s_info.head_layers, s_info.config["num_attention_heads"], s_info.config["intermediate_size"], s_info.hyper["width"]) == (2, 2, 32, 0.5)
    loaded_info, loaded = load_run(tmp_path / "s")
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), loaded.state_dict().values()))
    # The graph carries the narrower weights (ONNX vs PyTorch parity of a thin head: the fixture
    # bundle's thin heads, checked by the service's tests).
    shapes = {tuple(i.dims) for i in onnx.load(str(tmp_path / "s" / "head.onnx")).graph.initializer}
    assert (32, 32) in shapes and (64, 32) not in shapes and (32, 64) not in shapes
    with pytest.raises(ValueError, match="width must be in"):
        session.distill(teacher, info, 1, Hyper(epochs=1), DistillWeights(), width=1.5)


def test_student_layer_map_ends_on_the_teacher_top() -> None:
    assert student_layer_map(4, 2) == [1, 3]
    assert student_layer_map(3, 1) == [2]
    assert student_layer_map(5, 2) == [1, 4]


def test_full_fine_tuning_scores_the_dev_set(session: TaskSession) -> None:
    values = session.full(Hyper(epochs=1, batch_size=16, lr=1e-3))
    assert 0 <= values["accuracy"] <= 100


def test_regression_task_reports_correlations(tiny_checkpoint: Path, tiny_data: Path) -> None:
    stsb = TaskSession.open(tiny_checkpoint, tiny_data, "stsb", max_length=32)
    info, _ = stsb.partial(3, Hyper(epochs=1, batch_size=16, lr=1e-3))
    assert {"pearson", "spearman", "score"} <= set(info.metrics)


def test_choose_prefers_the_cheapest_head_then_deep_branch_within_tolerance() -> None:
    base = BertConfig(vocab_size=10, hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024)

    def c(name: str, branch: int, layers: int, score: float, width: float = 1.0) -> Candidate:
        return Candidate(Path(name), branch, layers, score, "x", head_cost(kind_named("classification"), layers, base.thinned(width), base, 16))

    candidates = [c("f2", 2, 4, 90.0), c("f4", 4, 2, 89.5), c("f4-s1", 4, 1, 89.2), c("f5", 5, 1, 85.0), c("f2-s1", 2, 1, 89.9)]
    assert choose(candidates, 90.0, 1.0) == (candidates[2], True)  # 1 layer, deepest branch among those
    candidates[2] = c("f4-s1", 4, 1, 80.0)
    assert choose(candidates, 90.0, 1.0) == (candidates[4], True)  # fewer layers beats a deeper branch
    assert choose(candidates, 95.0, 1.0) == (candidates[0], False)
    candidates.append(c("f2-s1-w25", 2, 1, 89.1, 0.25))
    assert choose(candidates, 90.0, 1.0) == (candidates[5], True)  # a thinner layer costs less
    candidates[1:2] = [c("f4-s2-w25", 4, 2, 89.5, 0.25)]
    assert candidates[1].cost > candidates[5].cost  # a thin full-token layer still costs more than a [CLS]-only one


def test_without_a_head_on_target_the_cheapest_within_the_dev_noise_of_the_best_is_chosen() -> None:
    def c(name: str, score: float, cost: float) -> Candidate:
        return Candidate(Path(name), 4, 1, score, "x", cost)

    candidates = [c("f4", 49.3, 1.06), c("f3", 47.9, 3.06), c("f4-s1-w25", 46.5, 0.016), c("f4-s1", 36.6, 0.065)]
    noise = score_noise("accuracy", 49.3, 71)  # WNLI's dev set: 71 examples
    assert noise == pytest.approx(100 * (0.493 * 0.507 / 71) ** 0.5) and 5.9 < noise < 6.0
    assert choose(candidates, 52.1, 1.0, noise) == (candidates[2], False)
    assert choose(candidates, 52.1, 1.0) == (candidates[0], False)  # no noise: the best head
    assert score_noise("mcc", 4.4, 1043) == 0.0 and score_noise("accuracy", 50.0, None) == 0.0


def test_head_cost_counts_full_token_layers_by_width_and_the_cls_layer_per_utterance() -> None:
    base = BertConfig(vocab_size=10, hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024)
    half, quarter = base.thinned(0.5), base.thinned(0.25)
    assert (half.num_attention_heads, half.head_size, half.intermediate_size) == (2, 64, 512)
    assert layer_cost(base, base) == 1.0 and layer_cost(half, base) == 0.5 and layer_cost(quarter, base) == 0.25
    assert head_cost(kind_named("tagging"), 2, quarter, base, 16) == 0.5
    # The [CLS]-only layer: scoring and pooling 2·heads·h per token, the rest once per utterance.
    assert head_cost(kind_named("classification"), 1, base, base, 16) == pytest.approx(4 / (6 * 256) + 1 / 16)
    assert head_cost(kind_named("classification"), 2, half, base, 16) == pytest.approx(0.5 + 2 / (6 * 256) + 0.5 / 16)
    assert head_cost(kind_named("regression"), 0, base, base, 16) == 0.0


def test_unknown_labels_and_missing_pairs_name_the_file_and_line(tiny_data: Path, tmp_path: Path) -> None:
    spec = load_task_spec(tiny_data, "sst2")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "1"}\n{"text": "x", "label": "7"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: field 'label' is '7', not a label of task sst2; accepted: 0, 1"):
        read_examples(bad, spec)
    pair_spec = load_task_spec(tiny_data, "rte")
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: task rte is 'pair' input, the line lacks text_pair"):
        read_examples(bad, pair_spec)
    with pytest.raises(DatasetError, match="unknown task 'nope'"):
        load_task_spec(tiny_data, "nope")


def test_the_training_loop_steps_once_per_batch_over_seeded_epochs_and_leaves_eval_mode() -> None:
    data = EncodedSet([Encoding([0] * (2 + i % 5), [0] * (2 + i % 5)) for i in range(40)], torch.arange(40, dtype=torch.float32))
    weight = torch.nn.Linear(1, 1)
    seen: list[list[int]] = []

    def batch_loss(batch: list[int]) -> torch.Tensor:
        seen.append(batch)
        assert weight.training
        return ((weight(data.labels[batch].unsqueeze(-1)) - 1) ** 2).mean()

    before = weight.weight.detach().clone()
    train_loop(weight, data, Hyper(epochs=1.5, batch_size=8, lr=1e-2, seed=5), batch_loss, "test")
    assert len(seen) == 5 + 2  # one epoch of 5 batches, then half of the next (2 of 5)
    assert sorted(i for batch in seen[:5] for i in batch) == list(range(40))  # an epoch sees every example once
    assert not weight.training and not torch.equal(weight.weight, before)
    again: list[list[int]] = []
    train_loop(torch.nn.Linear(1, 1), data, Hyper(epochs=1.5, batch_size=8, lr=1e-2, seed=5), lambda b: again.append(b) or torch.zeros((), requires_grad=True), "test")
    assert again == seen  # the same seed, the same batches
