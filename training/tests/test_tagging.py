"""Token tagging (BIO slots) end to end on the tiny configuration: alignment of word labels on
first pieces, truncation, span F1, the CRF, training, distillation, export, bundle and sweep."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import onnx
import pytest
import torch

from mtbert import metrics
from mtbert.bundle import PARITY_SINGLE, BundleWriter, verify
from mtbert.cli import build_parser
from mtbert.data import DatasetError, Example, load_task_spec, read_examples
from mtbert.modeling import CRF
from mtbert.pipeline import TaskSession
from mtbert.sweep import StudySettings, SweepResult, run_sweep
from mtbert.kinds.tagging import IGNORE, decode_words, tagging_loss, word_rows
from mtbert.tokenization import WordPieceTokenizer
from mtbert.encoded import EncodedSet
from mtbert.train import DistillWeights, Hyper

from .conftest import VOCAB

FAST = Hyper(epochs=1, batch_size=16, lr=1e-3)
TASK = "snips_slots"


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_file(VOCAB, max_length=32)


@pytest.fixture(scope="module")
def session(tiny_checkpoint: Path, tiny_data: Path) -> TaskSession:
    return TaskSession.open(tiny_checkpoint, tiny_data, TASK, max_length=32)


@pytest.fixture(scope="module")
def crf_runs(tiny_checkpoint: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CRF teacher (F=1, two head layers) and its one-layer student, written as runs."""
    root = tmp_path_factory.mktemp("tag-runs")
    crf_session = TaskSession.open(tiny_checkpoint, tiny_data, TASK, max_length=32, crf=True)
    info, teacher = crf_session.partial(1, Hyper(epochs=2, batch_size=16, lr=1e-3), root / "teacher")
    crf_session.distill(teacher, info, 1, FAST, DistillWeights(), root / "student", teacher_dir="teacher")
    return root


# ---------------------------------------------------------------------------- data and alignment
def _tagging_set(words: list[list[str]], tags: list[list[str]], tokenizer: WordPieceTokenizer, tiny_data: Path) -> EncodedSet:
    spec = load_task_spec(tiny_data, TASK)
    index = {t: i for i, t in enumerate(spec.labels)}
    examples = [Example(" ".join(w), None, [index[t] for t in ts], w) for w, ts in zip(words, tags)]
    return EncodedSet.build(examples, tokenizer, spec)


def test_labels_sit_on_first_pieces_only(tokenizer: WordPieceTokenizer, tiny_data: Path) -> None:
    # "unaffable" -> una ##ffa ##ble; "☃" -> [UNK] (one piece, still labelled); "7" one piece.
    words = ["wake", "unaffable", "☃", "at", "7", "tomorrow"]
    tags = ["O", "B-artist", "I-artist", "O", "B-timeRange", "I-timeRange"]
    data = _tagging_set([words], [tags], tokenizer, tiny_data)
    pieces = [tokenizer.vocab[i] for i in data.encodings[0].input_ids]
    assert pieces == ["[CLS]", "wake", "una", "##ffa", "##ble", "[UNK]", "at", "7", "tomorrow", "[SEP]"]
    assert data.word_starts == [[1, 2, 5, 6, 7, 8]]
    spec = load_task_spec(tiny_data, TASK)
    expected = [IGNORE, *[spec.labels.index(t) for t in tags[:2]], IGNORE, IGNORE, *[spec.labels.index(t) for t in tags[2:]], IGNORE]
    assert data.labels[0].tolist() == expected


def test_truncation_drops_whole_trailing_words(tiny_data: Path) -> None:
    short = WordPieceTokenizer.from_file(VOCAB, max_length=6)  # room for 4 pieces
    words = ["play", "unaffable", "music", "now"]  # 1 + 3 + 1 + 1 pieces
    data = _tagging_set([words], [["O", "B-artist", "I-artist", "O"]], short, tiny_data)
    assert [short.vocab[i] for i in data.encodings[0].input_ids] == ["[CLS]", "play", "una", "##ffa", "##ble", "[SEP]"]
    assert data.word_starts == [[1, 2, -1, -1]]
    assert len(data.word_tags[0]) == 4  # truncated words stay in the gold, scored as predicted "O"
    # Serving truncates pieces, not words: a word keeps its tag while its first piece is present.
    words, starts = short.served_word_starts("play music unaffable now")
    assert (words, starts) == (["play", "music", "unaffable", "now"], [1, 2, 3, -1])


def test_words_cut_by_truncation_count_as_missed_spans(tiny_data: Path) -> None:
    short = WordPieceTokenizer.from_file(VOCAB, max_length=4)
    data = _tagging_set([["play", "jazz", "now"]], [["O", "O", "B-genre"]], short, tiny_data)
    spec = load_task_spec(tiny_data, TASK)
    logits = torch.zeros(1, 4, spec.num_outputs)
    logits[0, :, spec.labels.index("O")] = 1.0
    values = spec.output_kind.evaluate(spec, logits, data)
    assert values["span_f1"] == 0.0 and values["token_accuracy"] == pytest.approx(200 / 3)


def test_tagging_lines_are_checked(tiny_data: Path, tmp_path: Path) -> None:
    spec = load_task_spec(tiny_data, TASK)
    assert (spec.kind, spec.input, spec.primary_metric, spec.labels[-1]) == ("tagging", "single", "span_f1", "O")
    examples = read_examples(tiny_data / TASK / "dev.jsonl", spec)
    assert all(len(e.label) == len(e.words) for e in examples)  # type: ignore[arg-type]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="bad.jsonl:1: 2 tokens but 1 tags"):
        read_examples(bad, spec)
    bad.write_text('{"tokens": ["a"], "tags": ["B-nope"]}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="field 'tags' holds 'B-nope', not a tag of task"):
        read_examples(bad, spec)


def test_parity_texts_split_into_words_like_the_whole_text(tokenizer: WordPieceTokenizer) -> None:
    """Tokenizing word by word gives the pieces of the whole text, so word positions are exact."""
    for text in PARITY_SINGLE:
        words = text.split()
        assert [p for group in tokenizer.word_piece_groups(words) for p in group] == tokenizer.tokenize(text)


# ---------------------------------------------------------------------------- span F1
@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["O", "I-time", "I-time", "O"], {("time", 1, 2)}),  # I- without B- starts an entity
        (["B-time", "B-time", "I-time"], {("time", 0, 0), ("time", 1, 2)}),  # adjacent, same type
        (["O", "B-date", "I-date"], {("date", 1, 2)}),  # entity at the end
        (["B-time", "I-date", "I-date"], {("time", 0, 0), ("date", 1, 2)}),  # type change inside I-
        (["B-time", "O", "I-time"], {("time", 0, 0), ("time", 2, 2)}),
        (["O", "O"], set()),
    ],
)
def test_bio_spans_read_like_conlleval(tags: list[str], spans: set) -> None:
    assert metrics.bio_spans(tags) == spans


def test_span_f1_counts_exact_matches_only() -> None:
    gold = [["B-time", "I-time", "O", "B-date"], ["O", "B-city"]]
    pred = [["B-time", "O", "O", "B-date"], ["O", "B-city"]]  # one span too short
    values = metrics.compute_tagging(pred, gold)
    assert values["precision"] == pytest.approx(200 / 3) and values["recall"] == pytest.approx(200 / 3)
    assert values["score"] == values["span_f1"] == pytest.approx(200 / 3)
    assert values["token_accuracy"] == pytest.approx(500 / 6)
    assert metrics.compute_tagging([["O"]], [["O"]])["span_f1"] == 0.0


# ---------------------------------------------------------------------------- CRF
def _path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> float:
    total = crf.start[path[0]] + crf.end[path[-1]] + sum(emissions[i, t] for i, t in enumerate(path))
    return float(total + sum(crf.transitions[a, b] for a, b in zip(path, path[1:])))


def test_crf_viterbi_and_nll_match_brute_force() -> None:
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions = torch.randn(2, 4, 3)
    lengths = [4, 2]
    tags = torch.tensor([[0, 2, 1, 1], [2, 0, 0, 0]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    expected = 0.0
    for row, n in enumerate(lengths):
        paths = list(itertools.product(range(3), repeat=n))
        scores = torch.tensor([_path_score(crf, emissions[row], p) for p in paths])
        best = paths[int(scores.argmax())]
        assert crf.decode(emissions[row, :n]) == list(best)
        expected += float(torch.logsumexp(scores, 0)) - _path_score(crf, emissions[row], tuple(tags[row, :n].tolist()))
    assert float(crf.nll(emissions, tags, mask)) == pytest.approx(expected / 2, rel=1e-5)


def test_word_rows_pack_first_pieces_and_loss_ignores_the_rest() -> None:
    logits = torch.arange(2 * 5 * 2, dtype=torch.float32).view(2, 5, 2)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 0, IGNORE, IGNORE], [IGNORE, IGNORE, 1, IGNORE, IGNORE, IGNORE]])
    emissions, tags, mask = word_rows(logits, labels[:, :5])
    assert emissions[0].tolist() == [logits[0, 1].tolist(), logits[0, 3].tolist()]
    assert (tags.tolist(), mask.tolist()) == ([[1, 0], [1, 0]], [[True, True], [True, False]])
    changed = logits.clone()
    changed[:, 0] += 100.0  # [CLS] and continuation pieces carry no label
    assert torch.equal(tagging_loss(logits, labels), tagging_loss(changed, labels))
    # An untrained CRF decodes as argmax; words without a first piece get "O".
    assert decode_words(logits[0], [1, -1, 3], 7, CRF(2)) == decode_words(logits[0], [1, -1, 3], 7) == [1, 7, 1]


# ---------------------------------------------------------------------------- training, export, bundle
def test_teacher_trains_exports_and_joins_a_bundle(session: TaskSession, tmp_path: Path) -> None:
    info, head = session.partial(2, FAST, tmp_path / "run")
    assert {"span_f1", "token_accuracy", "precision", "recall", "score"} <= set(info.metrics)
    assert info.hyper["crf"] is False and head.crf is None
    graph = onnx.load(str(tmp_path / "run" / "head.onnx"))
    dims = graph.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "sequence", session.spec.num_outputs]

    bundle = tmp_path / "b"
    manifest = BundleWriter(bundle).add(tmp_path / "run", name="t", version="1", max_length=32)
    assert verify(bundle) == []
    task = manifest["tasks"][0]
    assert task["output"] == {"kind": "tagging", "tags": session.spec.labels, "crf": None}
    assert task["metrics"]["primary"] == "span_f1"
    parity = json.loads((bundle / "parity.json").read_text())
    for case in parity["cases"]:
        if case["textPair"] is None:
            assert len(case["outputs"][TASK]) == len(case["inputIds"]) * session.spec.num_outputs
            assert len(case["tags"][TASK]) == len(case["text"].split())
            assert set(case["tags"][TASK]) <= set(session.spec.labels)
        else:
            assert TASK not in case["outputs"] and "tags" not in case
    long_case = next(c for c in parity["cases"] if len(c["text"].split()) > 100)
    assert long_case["tags"][TASK][-1] == "O"  # words past the truncation


def test_crf_head_matrices_and_parity_tags(crf_runs: Path, tiny_data: Path, tmp_path: Path) -> None:
    from mtbert.runs import load_run

    info, head = load_run(crf_runs / "teacher")
    assert head.crf is not None and info.hyper["crf"] is True
    assert float(head.crf.transitions.abs().sum()) > 0  # the CRF learned
    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    manifest = writer.add(crf_runs / "teacher", name="t", version="1", max_length=32)
    crf = manifest["tasks"][0]["output"]["crf"]
    assert torch.equal(torch.tensor(crf["transitions"]), head.crf.transitions.detach())
    assert torch.equal(torch.tensor(crf["start"]), head.crf.start.detach())
    assert torch.equal(torch.tensor(crf["end"]), head.crf.end.detach())
    # Decoding the stored logits with the stored matrices gives the stored tags (what C# does).
    tags = info.spec.labels
    tokenizer = WordPieceTokenizer.from_file(VOCAB, max_length=32)
    for case in json.loads((bundle / "parity.json").read_text())["cases"]:
        if case["textPair"] is None:
            logits = torch.tensor(case["outputs"][TASK]).view(len(case["inputIds"]), len(tags))
            _, starts = tokenizer.served_word_starts(case["text"])
            assert [tags[i] for i in decode_words(logits, starts, tags.index("O"), head.crf)] == case["tags"][TASK]
    assert verify(bundle) == []
    writer.remove(TASK)
    assert all("tags" not in c for c in json.loads((bundle / "parity.json").read_text())["cases"])


def test_distilled_tagging_student_keeps_the_crf(crf_runs: Path) -> None:
    from mtbert.runs import load_run

    info, student = load_run(crf_runs / "student")
    assert (info.method, info.head_layers, info.teacher) == ("distilled", 1, "teacher")
    assert student.crf is not None and "span_f1" in info.metrics


def test_crf_is_refused_for_other_task_kinds(tiny_checkpoint: Path, tiny_data: Path) -> None:
    with pytest.raises(ValueError, match="--crf applies to tagging tasks"):
        TaskSession.open(tiny_checkpoint, tiny_data, "sst2", max_length=32, crf=True)
    assert build_parser().parse_args(["train", "--task", TASK, "--frozen", "2", "--out", "x", "--crf"]).crf


def test_sweep_on_a_tagging_task(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    atis = TaskSession.open(tiny_checkpoint, tiny_data, "atis_slots", max_length=32)
    result = run_sweep(atis, tmp_path / "sw", StudySettings((1, 2), (1,), FAST, FAST, DistillWeights(), tolerance=100.0, widths=(0.5,)))
    assert result.primary == "span_f1" and result.full is not None and "token_accuracy" in result.full
    # Every head meets this tolerance. A full-width 1-layer student of f1 would cost what teacher f2
    # costs (a tagging layer reads every token) at a shallower branch, so it is not trained; the
    # half-width student of f2 is cheaper, trained first, and ends the study.
    assert [r["run"] for r in result.rows] == ["f1", "f2", "f2-s1-w50"]
    assert result.chosen["run"] == "f2-s1-w50" and result.widths == [0.5]
    assert SweepResult.load(tmp_path / "sw").chosen == result.chosen
    assert (tmp_path / "sw" / "frozen-layers.png").is_file()
    manifest = BundleWriter(tmp_path / "b").add(tmp_path / "sw" / result.chosen["run"], name="t", version="1", max_length=32)
    assert manifest["tasks"][0]["output"]["kind"] == "tagging"
