"""The head-kind registry (`mtbert.kinds`): each kind found by name, and what each one decides."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from mtbert.checkpoint import BertConfig
from mtbert.data import ACCEPTED_KINDS, TaskSpec, load_task_spec
from mtbert.kinds import KINDS, OutputKind, kind_named, source_kinds
from mtbert.kinds.tagging import IGNORE
from mtbert.modeling import TaskHead

CONFIG = BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16)


def test_the_registry_finds_every_kind_module_in_name_order() -> None:
    assert [k.name for k in KINDS] == ["classification", "regression", "tagging"]
    assert all(isinstance(k, OutputKind) and kind_named(k.name) is k for k in KINDS)
    with pytest.raises(ValueError, match="unknown output kind 'ranking'; known: classification, regression, tagging"):
        kind_named("ranking")
    # tasks.json's kinds come from the kinds' own `sources`, in registry order.
    assert ACCEPTED_KINDS == "'single-sentence classification', 'sentence-pair classification', 'regression', 'token tagging (BIO slots)'"
    assert {source: (i, k.name) for source, (i, k) in source_kinds().items()}["regression"] == ("pair", "regression")


def test_each_input_a_kind_reads_has_a_line_format() -> None:
    for kind in KINDS:
        for input_kind in kind.sources.values():
            assert kind.line_format(input_kind).startswith("{"), (kind.name, input_kind)


def test_only_tagging_outputs_per_token_and_may_have_a_crf_only_classification_a_fallback() -> None:
    assert [(k.name, k.per_token, k.supports_crf, k.supports_fallback, k.reads_csv) for k in KINDS] == [
        ("classification", False, False, True, True),
        ("regression", False, False, False, True),
        ("tagging", True, True, False, False),
    ]
    with pytest.raises(ValueError, match="a classification head has no CRF layer"):
        TaskHead(CONFIG, 1, kind_named("classification"), 3, crf=True)


def test_a_copied_head_keeps_the_registered_kind() -> None:
    head = TaskHead(CONFIG, 1, kind_named("tagging"), 3, crf=True)
    assert copy.deepcopy(head).kind is kind_named("tagging")


@pytest.mark.parametrize("task", ["sst2", "rte", "stsb", "snips_slots"])
def test_manifest_outputs_describe_as_many_outputs_as_the_head_has(task: str, tiny_data: Path) -> None:
    spec = load_task_spec(tiny_data, task)
    kind = spec.output_kind
    head = TaskHead(CONFIG, 1, kind, spec.num_outputs, crf=kind.supports_crf)
    output = kind.manifest_output(spec, head)
    assert output["kind"] == kind.name and kind_named(output["kind"]) is kind
    assert kind.manifest_width(output) == spec.num_outputs
    assert kind.manifest_problems(output) == []
    crf = kind.manifest_crf(output)
    assert (crf is not None) == kind.supports_crf
    if crf is not None:
        assert torch.equal(crf.transitions, head.crf.transitions)  # type: ignore[union-attr]


def test_tagging_manifest_problems_name_the_field() -> None:
    tagging = kind_named("tagging")
    assert tagging.manifest_problems({"kind": "tagging", "tags": ["B-x"], "crf": {"transitions": [[0.0, 0.0]], "start": [0.0], "end": []}}) == [
        'tags has no "O" tag', "crf.transitions is not 1 x 1", "crf.end does not have 1 values",
    ]


def test_losses_and_predictions_per_kind() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    classification, regression, tagging = KINDS
    labels = torch.tensor([0, 2, 1, 1])
    assert torch.equal(classification.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))
    assert classification.soft_loss(logits, logits, labels, 2.0).abs() < 1e-6  # a student equal to its teacher
    assert regression.loss(logits[:, :1], logits[:, 0]) == 0.0 and regression.num_outputs(TaskSpec("t", "pair", "regression")) == 1
    token_logits = torch.randn(2, 5, 3)
    token_labels = torch.full((2, 5), IGNORE)
    token_labels[0, 1] = 2
    assert torch.equal(tagging.loss(token_logits, token_labels), torch.nn.functional.cross_entropy(token_logits[0, 1:2], torch.tensor([2])))
    assert [classification.primary_metric(t) for t in ("cola", "mrpc", "sst2")] == ["mcc", "f1_acc", "accuracy"]
    assert (regression.primary_metric("stsb"), tagging.primary_metric("atis_slots")) == ("pearson_spearman", "span_f1")
