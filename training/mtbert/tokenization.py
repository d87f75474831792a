"""BERT WordPiece tokenization, identical to Hugging Face's BertTokenizer (uncased).

The C# service tokenizes with Microsoft.ML.Tokenizers; both sides are checked against the same
reference ids (`parity.json`), so any change here must keep them equal.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from pathlib import Path

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"
MAX_WORD_CHARS = 100


def read_vocab(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as stream:  # type: ignore[operator]
        return [line.rstrip("\n") for line in stream]


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


@dataclass(frozen=True)
class Encoding:
    input_ids: list[int]
    token_type_ids: list[int]


class WordPieceTokenizer:
    def __init__(self, vocab: list[str], lowercase: bool = True, strip_accents: bool = True, max_length: int = 128) -> None:
        self.vocab = vocab
        self.ids = {token: index for index, token in enumerate(vocab)}
        for special in (CLS, SEP, PAD, UNK):
            if special not in self.ids:
                raise ValueError(f"vocabulary has no {special} token")
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.max_length = max_length
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = (self.ids[t] for t in (CLS, SEP, PAD, UNK))

    @staticmethod
    def from_file(path: Path, **kwargs: object) -> "WordPieceTokenizer":
        return WordPieceTokenizer(read_vocab(path), **kwargs)  # type: ignore[arg-type]

    # -- basic tokenization --------------------------------------------------------------
    def _clean(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(" " if _is_whitespace(ch) else ch)
        return "".join(out)

    def _split_punctuation(self, word: str) -> list[str]:
        pieces: list[str] = []
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(ch)
            else:
                current += ch
        if current:
            pieces.append(current)
        return pieces

    def basic_tokens(self, text: str) -> list[str]:
        tokens: list[str] = []
        for word in self._clean(text).split():
            if self.lowercase:
                word = word.lower()
            if self.strip_accents:
                word = "".join(ch for ch in unicodedata.normalize("NFD", word) if unicodedata.category(ch) != "Mn")
            tokens.extend(self._split_punctuation(word))
        return tokens

    # -- word pieces ---------------------------------------------------------------------
    def word_pieces(self, word: str) -> list[int]:
        if len(word) > MAX_WORD_CHARS:
            return [self.unk_id]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.ids:
                    found = self.ids[candidate]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            pieces.append(found)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[int]:
        return [piece for word in self.basic_tokens(text) for piece in self.word_pieces(word)]

    def word_piece_groups(self, words: list[str]) -> list[list[int]]:
        """Word pieces per pre-split word (for tagging: a label goes on each word's first piece)."""
        return [[piece for token in self.basic_tokens(word) for piece in self.word_pieces(token)] for word in words]

    # -- encoding ------------------------------------------------------------------------
    def encode(self, text: str, text_pair: str | None = None) -> Encoding:
        first = self.tokenize(text)
        if text_pair is None:
            first = first[: self.max_length - 2]
            ids = [self.cls_id, *first, self.sep_id]
            return Encoding(ids, [0] * len(ids))
        second = self.tokenize(text_pair)
        first, second = truncate_longest_first(first, second, self.max_length - 3)
        ids = [self.cls_id, *first, self.sep_id, *second, self.sep_id]
        return Encoding(ids, [0] * (len(first) + 2) + [1] * (len(second) + 1))


    def encode_words(self, words: list[str]) -> tuple[Encoding, list[int]]:
        """A pre-split single text for tagging: `[CLS] pieces [SEP]`, truncated by dropping whole
        trailing words (a word's label sits on its first piece, so no word is half kept). Returns
        the encoding and each word's first-piece position (-1: the word was dropped or has no piece)."""
        groups = self.word_piece_groups(words)
        budget, kept = self.max_length - 2, 0
        pieces: list[int] = []
        for group in groups:
            if len(pieces) + len(group) > budget:
                break
            pieces.extend(group)
            kept += 1
        ids = [self.cls_id, *pieces, self.sep_id]
        return Encoding(ids, [0] * len(ids)), word_starts(groups[:kept], len(pieces)) + [-1] * (len(words) - kept)

    def served_word_starts(self, text: str) -> tuple[list[str], list[int]]:
        """How serving aligns words and `encode(text)`: the words are `text.split()`, each word's
        pieces are counted by tokenizing it alone, and a word whose first piece was truncated away
        (or that has no piece) gets position -1 (it is tagged "O")."""
        words = text.split()
        kept = len(self.encode(text).input_ids) - 2
        return words, word_starts(self.word_piece_groups(words), kept)


def word_starts(groups: list[list[int]], kept: int) -> list[int]:
    """Position of each word's first piece in `[CLS] pieces...` when only the first `kept` pieces
    are present; -1 for a word with no piece or whose first piece is not present."""
    starts: list[int] = []
    offset = 0
    for group in groups:
        starts.append(offset + 1 if group and offset < kept else -1)
        offset += len(group)
    return starts


def truncate_longest_first(first: list[int], second: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Drops pieces from the end of the longer sequence (the second one on ties) until both fit."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        if len(first) > len(second):
            first.pop()
        else:
            second.pop()
    return first, second
