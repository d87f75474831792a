"""Reading a dataset file strictly: UTF-8 (a byte-order mark accepted), a CSV with a header where
every row has exactly the header's fields, or JSONL with one object per line. A bad line never
shifts into a wrong example: it is reported with its file, line and field, and a file's problems
are reported together (up to MAX_LISTED of them) in one DatasetError."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from .records import DatasetError

MAX_LISTED = 20  # problems of one file listed in its error
BOM = b"\xef\xbb\xbf"
CSV_REQUIRED = ("text", "label")
CSV_COLUMNS = ("text", "text_pair", "label")  # text_pair: sentence-pair tasks


class Problems:
    """The problems found in one file, raised together by `raise_if_any`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def raise_if_any(self) -> None:
        if not self.messages:
            return
        if len(self.messages) == 1:
            raise DatasetError(self.messages[0])
        shown = self.messages[:MAX_LISTED]
        more = f" (the first {MAX_LISTED} listed)" if len(self.messages) > MAX_LISTED else ""
        raise DatasetError(f"{self.path}: {len(self.messages)} problems{more}:\n" + "\n".join(f"  {m}" for m in shown))


def file_rows(path: Path, problems: Problems) -> Iterator[tuple[int, dict]]:
    """(line number, fields) of each non-empty line of a JSONL file, or of each row of a CSV file
    with a header (the header is line 1). Bad lines are added to `problems` and skipped; a file
    that cannot be read at all (missing, no usable header) raises at once."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    lines = decoded_lines(path, problems)
    yield from (_csv_rows(path, lines, problems) if path.suffix == ".csv" else _jsonl_rows(path, lines, problems))


def decoded_lines(path: Path, problems: Problems) -> list[tuple[int, str]]:
    """(line number, text) of each line that is valid UTF-8; a leading byte-order mark (as
    spreadsheets save "UTF-8 CSV") is dropped; a line that is not UTF-8 is a problem naming its
    line and the byte."""
    raw = path.read_bytes()
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    lines: list[tuple[int, str]] = []
    for line_no, data in enumerate(raw.split(b"\n"), 1):
        try:
            lines.append((line_no, data.decode("utf-8").removesuffix("\r")))
        except UnicodeDecodeError as error:
            column = len(data[: error.start].decode("utf-8", "replace")) + 1
            problems.add(f"{path}:{line_no}: not UTF-8 (byte 0x{data[error.start]:02x} at column {column}); save the file as UTF-8")
    return lines


def _jsonl_rows(path: Path, lines: list[tuple[int, str]], problems: Problems) -> Iterator[tuple[int, dict]]:
    for line_no, line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            problems.add(f"{path}:{line_no}: not valid JSON ({error})")
            continue
        if not isinstance(row, dict):
            problems.add(f"{path}:{line_no}: expected a JSON object per line, found {type(row).__name__}")
            continue
        yield line_no, row


def _csv_rows(path: Path, lines: list[tuple[int, str]], problems: Problems) -> Iterator[tuple[int, dict]]:
    """Each physical line is one row (a text cannot hold a line break: a quote left open is
    reported on its own line instead of swallowing the lines after it)."""
    content = [(n, line) for n, line in lines if line.strip()]
    if not content or content[0][0] != 1:
        problems.raise_if_any()  # an undecodable header
        raise DatasetError(f"{path}:1: the header must name the columns {', '.join(CSV_REQUIRED)} (and text_pair for pairs); found an empty line")
    header = _csv_header(path, content[0][1])
    for line_no, line in content[1:]:
        fields = _csv_fields(path, line_no, line, header, problems)
        if fields is not None and any(f.strip() for f in fields):
            yield line_no, dict(zip(header, fields))


def _csv_header(path: Path, line: str) -> list[str]:
    try:
        names = [name.strip() for name in next(csv.reader([line], strict=True))]
    except csv.Error as error:
        raise DatasetError(f"{path}:1: the header is not valid CSV ({error})") from error
    expected = f"the header must name the columns {', '.join(CSV_REQUIRED)} (and text_pair for pairs); found {names}"
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown or any(name not in names for name in CSV_REQUIRED):
        raise DatasetError(f"{path}:1: {expected}" + (f"; unknown: {', '.join(map(repr, unknown))}" if unknown else ""))
    if len(set(names)) != len(names):
        raise DatasetError(f"{path}:1: a column is named twice; found {names}")
    return names


def _csv_fields(path: Path, line_no: int, line: str, header: list[str], problems: Problems) -> list[str] | None:
    """The line's fields, or None after adding its problem: a quote left open, text after a
    closing quote, or another number of fields than the header names."""
    at = f"{path}:{line_no}"
    try:
        fields = next(csv.reader([line], strict=True))
    except csv.Error as error:
        column = open_quote_column(line)
        if column is not None:
            name = header[column] if column < len(header) else f"#{column + 1}"
            problems.add(f"{at}: field {name!r}: unterminated quote (the quote opened there is not closed on this line; a text cannot span lines)")
        else:
            problems.add(f"{at}: not valid CSV ({error}); a field holding a quote or a comma is written in quotes, its quotes doubled (\"say \"\"hi\"\"\")")
        return None
    if len(fields) != len(header):
        problems.add(
            f"{at}: {len(fields)} fields, the header names {len(header)} ({', '.join(header)}); "
            "a text holding a comma must be quoted (\"slow, but worth it\")"
        )
        return None
    return fields


def open_quote_column(line: str) -> int | None:
    """The 0-based field where a quote opens that the line never closes, else None (CSV quoting:
    a quote opens only at the start of a field; inside, "" is a quote character)."""
    column, quoted, start, i = 0, False, True, 0
    opened = None
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == '"' and line[i + 1 : i + 2] == '"':
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == ",":
            column, start = column + 1, True
            i += 1
            continue
        elif ch == '"' and start:
            quoted, opened = True, column
        start = False
        i += 1
    return opened if quoted else None
