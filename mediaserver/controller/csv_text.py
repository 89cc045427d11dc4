"""Turning a spreadsheet's export into CSV records, fed chunk by chunk.

Sans-I/O: `RecordReader.feed(chunk)` takes bytes (or text) as they arrive
and returns the records completed so far, so the same code serves a file,
an HTTP upload body and a test's bytes.

The encoding is decided from the first 4 KiB: a BOM (UTF-8, or UTF-16 as
Excel's "Unicode text" writes), the NUL pattern of BOM-less UTF-16, else
UTF-8 when that decodes, else Windows-1252 (older Excel's "CSV"). Bytes that
still do not decode become U+FFFD, so that row alone can be rejected.
"""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import Iterator

DELIMITERS = (",", ";", "\t", "|")
_HEAD_BYTES = 4096
_SNIFF_LINES = 20
# A record whose quotes never balance is cut here rather than eating the file.
_MAX_RECORD_LINES = 20

Record = list[str] | str  # cells, or why the csv module could not read it


class _Lines:
    """A resumable iterator for csv.reader: it pulls from a deque we fill."""

    def __init__(self) -> None:
        self.pending: deque[str] = deque()

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if not self.pending:
            raise StopIteration
        return self.pending.popleft()


class RecordReader:
    """Bytes in, CSV records out; encoding and delimiter sniffed at the start."""

    def __init__(self) -> None:
        self.encoding = ""
        self.delimiter = ","
        self._head = b""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._text_mode = False
        self._newline = "\n"
        self._partial = ""  # text after the last line end
        self._sniff: list[str] | None = []  # lines held back until sniffed
        self._record: list[str] = []  # lines of a record with an open quote
        self._quotes = 0
        self._lines = _Lines()
        self._reader: Iterator[list[str]] | None = None
        self._newline_known = False

    def feed(self, chunk: bytes | str) -> list[Record]:
        """Records completed by `chunk` (possibly none)."""
        return self._take_lines(self._decode(chunk, final=False), final=False)

    def close(self) -> list[Record]:
        """The records left when the input has ended."""
        lines = self._decode(b"" if not self._text_mode else "", final=True)
        return self._take_lines(lines, final=True)

    def _decode(self, chunk: bytes | str, *, final: bool) -> list[str]:
        if isinstance(chunk, str):
            self._text_mode = True
            self.encoding = self.encoding or "text"
            text = chunk
        else:
            text = self._decode_bytes(chunk, final=final)
        return self._split(text, final=final)

    def _decode_bytes(self, chunk: bytes, *, final: bool) -> str:
        if self._decoder is None:
            self._head += chunk
            if len(self._head) < _HEAD_BYTES and not final:
                return ""
            self.encoding, skip = _encoding(self._head[:_HEAD_BYTES])
            self._decoder = codecs.getincrementaldecoder(self.encoding)("replace")
            chunk, self._head = self._head[skip:], b""
            return self._decoder.decode(chunk, final=final)
        return self._decoder.decode(chunk, final=final)

    def _split(self, text: str, *, final: bool) -> list[str]:
        if not text and not final:
            return []
        if not self._newline_known and text:
            self._newline_known = True
            if "\r" in text and "\n" not in text:
                self._newline = "\r"  # old Mac exports end lines with CR only
        parts = (self._partial + text).split(self._newline)
        self._partial = parts.pop()
        lines = [part + "\n" for part in parts]
        if final and self._partial:
            lines.append(self._partial)
            self._partial = ""
        return lines

    def _take_lines(self, lines: list[str], *, final: bool) -> list[Record]:
        if self._sniff is not None:
            self._sniff.extend(lines)
            held = sum(1 for line in self._sniff if line.strip())
            if held < _SNIFF_LINES and not final:
                return []
            lines, self._sniff = self._sniff, None
            self.delimiter = sniff_delimiter(lines)
            self._reader = csv.reader(self._lines, delimiter=self.delimiter)

        records: list[Record] = []
        queue = deque(lines)
        while queue or (final and self._record):
            if not queue:  # the input ended inside a quoted cell
                records.extend(self._unbalanced(queue))
                continue
            line = queue.popleft()
            self._record.append(line)
            self._quotes += line.count('"')
            if self._quotes % 2 == 0:
                records.extend(self._flush())
            elif len(self._record) >= _MAX_RECORD_LINES:
                records.extend(self._unbalanced(queue))
        return records

    def _flush(self) -> list[Record]:
        self._lines.pending.extend(self._record)
        self._record, self._quotes = [], 0
        return self._records()

    def _unbalanced(self, queue: deque[str]) -> list[Record]:
        """Lines held for a quote that never closed within the limit.

        When the first line opens a quoted cell it does not close, that line
        is the bad row and the lines after it are read again as rows of
        their own, so one stray quote cannot swallow the rows below it.
        Otherwise the quotes were literal ones inside cells: read as held.
        """
        first = self._record[0]
        if not _opens_quote(first, self.delimiter):
            return self._flush()
        queue.extendleft(reversed(self._record[1:]))
        self._record, self._quotes = [], 0
        return ["has a quote that is never closed"]

    def _records(self) -> list[Record]:
        assert self._reader is not None
        records: list[Record] = []
        while self._lines.pending:
            try:
                records.append(next(self._reader))
            except StopIteration:
                break
            except csv.Error as exc:
                records.append(f"cannot be read as CSV: {exc}")
        return records


def _opens_quote(line: str, delimiter: str) -> bool:
    """True when `line` alone ends inside a quoted cell."""
    try:
        list(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error:
        return True
    return False


def _encoding(head: bytes) -> tuple[str, int]:
    """Codec name and how many BOM bytes to skip."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2

    sample = head[:1024]
    if len(sample) >= 4:
        odd_nuls, even_nuls = sample[1::2].count(0), sample[0::2].count(0)
        if odd_nuls > len(sample) // 4 and even_nuls == 0:
            return "utf-16-le", 0
        if even_nuls > len(sample) // 4 and odd_nuls == 0:
            return "utf-16-be", 0
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252", 0
    return "utf-8", 0


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the header widest with the rows agreeing.

    Rows agree when they have the header's width once trailing empty cells
    are dropped; a file of one column gets ",".
    """
    sample = [line for line in lines if line.strip()][:_SNIFF_LINES]
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [_trim(row) for row in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(1 for row in rows[1:] if len(row) == width), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _trim(row: list[str]) -> list[str]:
    while row and not row[-1].strip():
        row = row[:-1]
    return row
