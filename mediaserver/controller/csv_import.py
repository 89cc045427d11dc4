"""Bulk launches from a CSV file, streamed row by row.

Files come out of spreadsheets, so we accept what they write: a UTF-8 BOM,
UTF-16 from Excel's "Unicode text", `,` `;` tab or `|` delimiters (sniffed),
headers in any case and spacing, blank lines, trailing empty columns. Each
row is judged on its own: a bad row is rejected with its spreadsheet row
number (the header is row 1) and the reason, and every good row around it
is still accepted. Numbers go through the same checks as an API launch
(`prepare_launch`), so spreadsheet damage such as scientific notation is
refused rather than dialled wrong; a number seen before (after
normalisation) is rejected naming the row that had it first.

Columns: the phone column ("Phone Number", "phone", "number", "to", ...),
optional `scheduled_for` (ISO 8601) and `timezone` (IANA name), and one
column per declared variable or metadata key, matched ignoring case and
spacing, optionally written `var:name` / `meta:name`. Unknown columns
without a prefix are ignored and listed in the report; a prefixed column
the campaign does not declare fails the import at the header.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from typing import IO

import msgspec

from mediaserver.controller.campaign import Campaign
from mediaserver.controller.csv_text import Record, RecordReader
from mediaserver.controller.launch import LaunchRequest, prepare_launch
from mediaserver.controller.routing import CallerIdRouter
from mediaserver.errors import ValidationError

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024

PHONE_HEADERS = frozenset(
    {
        "phone_number", "phone", "number", "to", "to_number", "phone_no",
        "telephone", "tel", "mobile", "mobile_number", "cell", "recipient",
        "recipient_number", "msisdn",
    }
)  # fmt: skip
SCHEDULE_HEADERS = frozenset({"scheduled_for", "scheduled_at", "schedule", "call_at"})
TIMEZONE_HEADERS = frozenset({"timezone", "time_zone", "tz"})

_SEPARATORS = re.compile(r"[\s_.\-]+")
_PREFIX = re.compile(r"^(var|variable|meta|metadata)\s*:\s*(.*)$")


class RowRejection(msgspec.Struct, frozen=True, kw_only=True):
    row: int  # as a spreadsheet shows it: the header is row 1
    reason: str
    errors: dict[str, str] = {}


class ImportReport(msgspec.Struct, kw_only=True):
    """What the import did with each row; updated as rows stream by."""

    rows: int = 0  # data rows seen, blank ones included
    accepted: int = 0
    rejected: list[RowRejection] = []
    blank_rows: int = 0
    ignored_columns: list[str] = []
    delimiter: str = ","
    encoding: str = ""


Progress = Callable[[ImportReport], None]


class CsvImport:
    """One import of one file under one campaign.

    Sans-I/O core: `feed(chunk)` returns the launches its rows completed
    and `close()` the rest; `launches(stream)` and `alaunches(chunks)` wrap
    it for a file and for an upload body. `report` fills in as rows go by
    and is complete after `close()`.
    """

    def __init__(
        self,
        campaign: Campaign,
        *,
        progress: Progress | None = None,
        progress_every: int = 1000,
    ) -> None:
        self.campaign = campaign
        self.report = ImportReport()
        self._progress = progress
        self._every = max(1, progress_every)
        self._router = CallerIdRouter(campaign.caller_id)
        self._reader = RecordReader()
        self._row_number = 0
        self._columns: list[tuple[str, str]] | None = None  # set by the header
        self._seen: dict[str, int] = {}  # E.164 -> row that had it first

    def feed(self, chunk: bytes | str) -> list[LaunchRequest]:
        """Launches for the rows `chunk` completed.

        Raises:
            ValidationError: the header cannot be used; nothing is launched.
        """
        return self._handle(self._reader.feed(chunk))

    def close(self) -> list[LaunchRequest]:
        """Launches for the last rows; the report is then complete.

        Raises:
            ValidationError: the file is empty or its header cannot be used.
        """
        launches = self._handle(self._reader.close())
        if self._columns is None:
            raise ValidationError({"file": "is empty: no header row"})
        if self._progress is not None:
            self._progress(self.report)
        logger.info(
            "csv import: %d rows, %d accepted, %d rejected",
            self.report.rows,
            self.report.accepted,
            len(self.report.rejected),
            extra={"campaign_id": self.campaign.id},
        )
        return launches

    def launches(self, stream: IO[bytes] | IO[str]) -> Iterator[LaunchRequest]:
        """Accepted rows of a file, read lazily in 64 KiB chunks."""
        while chunk := stream.read(CHUNK):
            yield from self.feed(chunk)
        yield from self.close()

    async def alaunches(
        self, chunks: AsyncIterable[bytes] | AsyncIterable[str]
    ) -> AsyncIterator[LaunchRequest]:
        """Accepted rows of an upload, as its body arrives."""
        async for chunk in chunks:
            for launch in self.feed(chunk):
                yield launch
        for launch in self.close():
            yield launch

    def _handle(self, records: list[Record]) -> list[LaunchRequest]:
        self.report.encoding = self._reader.encoding
        self.report.delimiter = self._reader.delimiter
        launches: list[LaunchRequest] = []
        for record in records:
            self._row_number += 1
            if self._columns is None:
                # Leading blank lines still count as spreadsheet rows.
                if isinstance(record, list) and any(c.strip() for c in record):
                    self._columns = self._header_roles(record)
                continue
            launch = self._row(self._row_number, record, self._columns)
            if launch is not None:
                launches.append(launch)
            if self._progress is not None and self.report.rows % self._every == 0:
                self._progress(self.report)
        return launches

    def _header_roles(self, header: list[str]) -> list[tuple[str, str]]:
        """Each column's role: ("phone"|"scheduled_for"|"timezone", "") or
        ("variables"|"metadata", name) or ("ignore", header text)."""
        variables = {s.name.lower(): s.name for s in self.campaign.variables}
        metadata = {s.name.lower(): s.name for s in self.campaign.metadata}
        errors: dict[str, str] = {}
        roles: list[tuple[str, str]] = []
        taken: dict[tuple[str, str], int] = {}

        for index, text in enumerate(header):
            role = _role(text, variables, metadata)
            if isinstance(role, str):
                errors[f"header[{index + 1}]"] = role
                role = ("ignore", text)
            elif role[0] != "ignore" and role in taken:
                errors[f"header[{index + 1}]"] = (
                    f"{text.strip()!r} repeats column {taken[role] + 1}"
                )
            taken.setdefault(role, index)
            roles.append(role)
            if role[0] == "ignore" and text.strip():
                self.report.ignored_columns.append(text.strip())

        if not any(kind == "phone" for kind, _ in roles):
            errors["header"] = "no phone number column (e.g. 'phone_number' or 'to')"
        if errors:
            raise ValidationError(errors)
        return roles

    def _row(
        self, row_number: int, cells: list[str] | str, columns: list[tuple[str, str]]
    ) -> LaunchRequest | None:
        self.report.rows += 1
        if isinstance(cells, str):  # the csv module could not read this row
            return self._rejected(row_number, cells)
        cells = [c.strip() for c in cells]
        if not any(cells):
            self.report.blank_rows += 1
            return None

        extra = [c for c in cells[len(columns) :] if c]
        if extra:
            return self._rejected(
                row_number,
                f"has {len(extra)} filled cell(s) beyond the header's columns "
                "(an unquoted delimiter inside a value?)",
            )
        if any("\ufffd" in c for c in cells):
            return self._rejected(
                row_number, f"contains bytes that are not {self.report.encoding} text"
            )
        return self._launch(row_number, cells, columns)

    def _launch(
        self, row_number: int, cells: list[str], columns: list[tuple[str, str]]
    ) -> LaunchRequest | None:
        fields: dict[str, str] = {}
        values: dict[str, dict[str, str]] = {"variables": {}, "metadata": {}}
        for (kind, name), cell in zip(columns, cells, strict=False):
            if kind in values and cell:
                values[kind][name] = cell
            elif kind != "ignore":
                fields[kind] = cell

        try:
            launch = prepare_launch(
                self.campaign,
                fields.get("phone", ""),
                values["variables"],
                values["metadata"],
                fields.get("scheduled_for") or None,
                fields.get("timezone") or None,
                row=row_number,
                router=self._router,
            )
        except ValidationError as exc:
            return self._rejected(row_number, _reason(exc.errors), exc.errors)

        first = self._seen.setdefault(launch.number, row_number)
        if first != row_number:
            why = f"duplicate of row {first}"
            return self._rejected(row_number, why, {"number": why})
        self.report.accepted += 1
        return launch

    def _rejected(
        self, row_number: int, reason: str, errors: dict[str, str] | None = None
    ) -> LaunchRequest | None:
        """Record the rejection; the row yields no launch."""
        rejection = RowRejection(row=row_number, reason=reason, errors=errors or {})
        self.report.rejected.append(rejection)
        return None


def _role(
    text: str, variables: dict[str, str], metadata: dict[str, str]
) -> tuple[str, str] | str:
    """A header cell's role, or the reason it cannot be used."""
    key = text.replace("\ufeff", "").strip().lower()
    prefixed = _PREFIX.match(key)
    if prefixed is not None:
        kind = "variables" if prefixed.group(1).startswith("var") else "metadata"
        name = _SEPARATORS.sub("_", prefixed.group(2)).strip("_")
        declared = variables if kind == "variables" else metadata
        if name not in declared:
            return f"{text.strip()!r}: the campaign declares no {kind} {name!r}"
        return kind, declared[name]

    name = _SEPARATORS.sub("_", key).strip("_")
    if name in PHONE_HEADERS:
        return "phone", ""
    if name in SCHEDULE_HEADERS:
        return "scheduled_for", ""
    if name in TIMEZONE_HEADERS:
        return "timezone", ""
    if name in variables and name in metadata:
        return f"{text.strip()!r} is both a variable and metadata: prefix var: or meta:"
    if name in variables:
        return "variables", variables[name]
    if name in metadata:
        return "metadata", metadata[name]
    return "ignore", text


def _reason(errors: dict[str, str]) -> str:
    return "; ".join(f"{field}: {why}" for field, why in errors.items())


async def import_csv(
    source: AsyncIterable[bytes] | IO[bytes] | IO[str],
    campaign: Campaign,
    enqueue: Callable[[list[LaunchRequest]], Awaitable[object]],
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
    progress_every: int = 1000,
) -> ImportReport:
    """Import an upload body or a file, handing accepted rows to `enqueue`.

    Rows are enqueued in batches as they are read, so a large file never
    sits in memory; the loop gets a turn after every chunk. A header error
    raises `ValidationError` before anything is enqueued.
    """
    job = CsvImport(campaign, progress=progress, progress_every=progress_every)
    batch: list[LaunchRequest] = []
    async for chunk in _chunks(source):
        batch.extend(job.feed(chunk))
        while len(batch) >= batch_size:
            await enqueue(batch[:batch_size])
            batch = batch[batch_size:]
        await asyncio.sleep(0)
    batch.extend(job.close())
    for start in range(0, len(batch), batch_size):
        await enqueue(batch[start : start + batch_size])
    return job.report


async def _chunks(
    source: AsyncIterable[bytes] | IO[bytes] | IO[str],
) -> AsyncIterator[bytes | str]:
    if isinstance(source, AsyncIterable):
        async for piece in source:
            yield piece
        return
    while chunk := source.read(CHUNK):
        yield chunk
