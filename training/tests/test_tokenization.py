from __future__ import annotations

import pytest

from mtbert.tokenization import WordPieceTokenizer, truncate_longest_first

from .conftest import VOCAB


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_file(VOCAB, max_length=16)


def pieces(tokenizer: WordPieceTokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.vocab[i] for i in ids]


def test_bert_uncased_reference_ids(tokenizer: WordPieceTokenizer) -> None:
    # bert-base-uncased gives [CLS] una ##ffa ##ble [SEP] = 101 14477 20961 3468 102.
    assert tokenizer.encode("UNaffable").input_ids == [101, 14477, 20961, 3468, 102]


def test_lowercases_strips_accents_and_splits_punctuation(tokenizer: WordPieceTokenizer) -> None:
    assert pieces(tokenizer, tokenizer.tokenize("Héllo,   Café!")) == ["hello", ",", "cafe", "!"]
    assert pieces(tokenizer, tokenizer.tokenize("naïve façade")) == ["naive", "facade"]


def test_cjk_characters_become_words_and_controls_vanish(tokenizer: WordPieceTokenizer) -> None:
    assert pieces(tokenizer, tokenizer.tokenize("中文\u0000ok\u200b")) == ["中", "文", "ok"]


def test_special_token_text_is_not_special(tokenizer: WordPieceTokenizer) -> None:
    assert pieces(tokenizer, tokenizer.tokenize("a [SEP] b")) == ["a", "[", "sep", "]", "b"]


def test_unknown_and_overlong_words_become_unk(tokenizer: WordPieceTokenizer) -> None:
    assert tokenizer.tokenize("x" * 101) == [tokenizer.unk_id]
    assert tokenizer.tokenize("☃") == [tokenizer.unk_id]


def test_pair_layout_and_token_types(tokenizer: WordPieceTokenizer) -> None:
    encoding = tokenizer.encode("a b", "c")
    assert pieces(tokenizer, encoding.input_ids) == ["[CLS]", "a", "b", "[SEP]", "c", "[SEP]"]
    assert encoding.token_type_ids == [0, 0, 0, 0, 1, 1]


def test_single_text_is_truncated_to_max_length(tokenizer: WordPieceTokenizer) -> None:
    encoding = tokenizer.encode(" ".join(["word"] * 40))
    assert len(encoding.input_ids) == 16
    assert encoding.input_ids[-1] == tokenizer.sep_id


def test_longest_first_truncation_trims_the_longer_side_and_the_second_on_ties() -> None:
    assert truncate_longest_first([1] * 10, [2] * 3, 7) == ([1] * 4, [2] * 3)
    assert truncate_longest_first([1] * 4, [2] * 4, 7) == ([1] * 4, [2] * 3)
    assert truncate_longest_first([1] * 5, [2] * 9, 8) == ([1] * 4, [2] * 4)
