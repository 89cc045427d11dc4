"""CSV bulk import against the files spreadsheets really write."""

from __future__ import annotations

import codecs
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mediaserver.controller.campaign import Campaign, parse_campaign
from mediaserver.controller.csv_import import CsvImport, ImportReport, import_csv
from mediaserver.controller.launch import LaunchRequest
from mediaserver.errors import ValidationError


def _campaign(**changes: Any) -> Campaign:
    data: dict[str, Any] = {
        "id": "csv-test",
        "name": "CSV test",
        "agent_url": "ws://127.0.0.1:9/agent",
        "default_region": "US",
        "caller_id": {
            "default": {"id": "main", "number": "+12125550100"},
            "overrides": [
                {"prefix": "+44", "number": {"id": "uk", "number": "+447400123456"}}
            ],
        },
        "variables": [
            {"name": "customer_name", "required": True},
            {"name": "age", "type": "integer"},
            {"name": "vip", "type": "boolean", "default": False},
        ],
        "metadata": [{"name": "crm_id"}],
    }
    data.update(changes)
    return parse_campaign(data)


def _run(
    data: bytes | str, campaign: Campaign | None = None
) -> tuple[list[LaunchRequest], ImportReport]:
    job = CsvImport(campaign or _campaign())
    stream: io.IOBase = (
        io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    )
    launches = list(job.launches(stream))  # type: ignore[arg-type]
    return launches, job.report


def _rejected(report: ImportReport) -> dict[int, str]:
    return {r.row: r.reason for r in report.rejected}


def test_plain_file_accepts_rows_with_typed_values_and_routing() -> None:
    launches, report = _run(
        "phone_number,customer_name,age,crm_id\n"
        "(212) 555-0143,Ahmed,42,C-1\n"
        "+44 7400 123457,Sara,,C-2\n"
    )
    assert report.accepted == 2
    assert report.rejected == []
    first, second = launches
    assert first.number == "+12125550143"
    assert first.variables == {"customer_name": "Ahmed", "age": 42, "vip": False}
    assert first.metadata == {"crm_id": "C-1"}
    assert first.row == 2
    assert first.calling_number is not None
    assert first.calling_number.id == "main"
    assert second.calling_number is not None
    assert second.calling_number.id == "uk"
    assert "age" not in second.variables  # empty cell, no default


def test_excel_damage_bom_semicolons_and_header_spelling() -> None:
    text = (
        " Phone Number ;Customer Name;VAR: Age;meta:CRM_ID;;\r\n"
        "'+1 212 555 0143;Ahmed;42;C-1;;\r\n"
        "\r\n"
        "212-555-0144;Lina;7;C-2;;\r\n"
    )
    launches, report = _run(codecs.BOM_UTF8 + text.encode())
    assert report.delimiter == ";"
    assert report.encoding == "utf-8"
    assert [launch.number for launch in launches] == ["+12125550143", "+12125550144"]
    assert [launch.row for launch in launches] == [2, 4]  # the blank row counts
    assert launches[1].variables["age"] == 7
    assert report.blank_rows == 1


def test_utf16_unicode_text_from_excel() -> None:
    text = (
        "to\tcustomer_name\tcrm_id\r\n2125550143\tZoë\tC-1\r\n2125550144\tJosé\tC-2\r\n"
    )
    launches, report = _run(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert report.encoding == "utf-16-le"
    assert report.delimiter == "\t"
    assert [launch.variables["customer_name"] for launch in launches] == ["Zoë", "José"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_sniffed(delimiter: str) -> None:
    rows = ["number", "customer_name", "crm_id"], ["2125550143", "A, B", "C-1"]
    text = "\n".join(
        delimiter.join(f'"{c}"' if "," in c else c for c in r) for r in rows
    )
    launches, report = _run(text + "\n")
    assert report.delimiter == delimiter
    assert launches[0].variables["customer_name"] == "A, B"


def test_bad_rows_are_rejected_with_row_and_reason_and_good_rows_kept() -> None:
    text = (
        "phone,customer_name,age\n"
        "2125550143,Ahmed,42\n"  # 2 good
        "4.47400123457E+11,Sara,30\n"  # 3 scientific notation
        "2125550145.0,Omar,30\n"  # 4 float formatting
        "447400123458,Lee,30\n"  # 5 lost leading +
        "2125550146,,30\n"  # 6 missing required variable
        "2125550147,Ana,forty\n"  # 7 bad integer
        "(212) 555-0143,Ahmed again,42\n"  # 8 duplicate of row 2 once normalised
        "2125550148,Kim,1,surplus\n"  # 9 more cells than the header
        '2125550149,"Quoted\nacross lines",5\n'  # 10 good, one spreadsheet row
        "2125550150,Last,3\n"  # 11 good
    )
    launches, report = _run(text)
    assert [launch.row for launch in launches] == [2, 10, 11]
    assert launches[1].variables["customer_name"] == "Quoted\nacross lines"
    reasons = _rejected(report)
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 9}
    assert "scientific notation" in reasons[3]
    assert "'.0'" in reasons[4]
    assert "leading +" in reasons[5]
    assert "variables.customer_name" in reasons[6]
    assert "variables.age" in reasons[7]
    assert reasons[8] == "duplicate of row 2"
    assert "beyond the header" in reasons[9]
    assert report.rows == 10
    assert report.accepted == 3


def test_bad_bytes_after_a_utf8_start_reject_only_their_row() -> None:
    # More than the 4 KiB the encoding is judged on, all valid UTF-8 ...
    good = "".join(f"212555{i:04d},Zoë {i}\n" for i in range(200, 800))
    data = ("phone,customer_name\n" + good).encode()
    # ... then a row with bytes that are not UTF-8, then a good row.
    data += b"2125550144,Bad\xff\xfe\n2125550145,Good\n"
    launches, report = _run(data)
    assert len(launches) == 601
    assert launches[-1].row == 603
    assert list(_rejected(report)) == [602]
    assert "not utf-8 text" in _rejected(report)[602]
    assert launches[0].variables["customer_name"] == "Zoë 200"


def test_windows_1252_file_is_read_as_such() -> None:
    data = "phone,customer_name\n2125550143,José\n".encode("cp1252")
    launches, report = _run(data)
    assert report.encoding == "cp1252"
    assert launches[0].variables["customer_name"] == "José"


def test_scheduled_for_and_timezone_columns() -> None:
    launches, report = _run(
        "phone,customer_name,scheduled_for,timezone\n"
        "2125550143,A,2026-12-05T10:00,\n"  # naive: the number's own zone
        "2125550144,B,2026-12-05T10:00,Europe/Paris\n"
        "2125550145,C,2026-12-05T10:00:00Z,\n"
        "2125550146,D,next tuesday,\n"
        "2125550147,E,,Mars/Olympus\n"
    )
    assert [
        launch.scheduled_for.isoformat() for launch in launches if launch.scheduled_for
    ] == [
        "2026-12-05T15:00:00+00:00",
        "2026-12-05T09:00:00+00:00",
        "2026-12-05T10:00:00+00:00",
    ]
    assert launches[1].timezone == "Europe/Paris"
    assert launches[0].timezones == ("America/New_York",)
    reasons = _rejected(report)
    assert "scheduled_for" in reasons[5]
    assert "timezone" in reasons[6]


def test_unknown_columns_are_ignored_and_listed() -> None:
    launches, report = _run("Notes,phone,customer_name\nhello,2125550143,A\n")
    assert report.ignored_columns == ["Notes"]
    assert launches[0].variables == {"customer_name": "A", "vip": False}


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("customer_name,age\n", "header"),  # no phone column
        ("phone,to,customer_name\n", "header[2]"),  # two phone columns
        ("phone,var:nickname\n", "header[2]"),  # prefixed but undeclared
        ("phone,customer_name,Customer Name\n", "header[3]"),
    ],
)
def test_unusable_header_fails_the_import(header: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _run(header + "2125550143,A,B\n")
    assert field in caught.value.errors


def test_empty_file_fails() -> None:
    with pytest.raises(ValidationError):
        _run(b"")
    with pytest.raises(ValidationError):
        _run(b"\n\n \n")


def test_progress_is_reported_every_n_rows() -> None:
    seen: list[int] = []
    rows = "".join(f"21255501{i:02d},N{i}\n" for i in range(25))
    job = CsvImport(
        _campaign(), progress=lambda r: seen.append(r.rows), progress_every=10
    )
    list(job.launches(io.BytesIO(("phone,customer_name\n" + rows).encode())))
    assert seen == [10, 20, 25]


async def test_async_import_feeds_enqueue_in_batches_from_tiny_chunks() -> None:
    body = (
        "phone,customer_name\n"
        + "".join(f"21255501{i:02d},N{i}\n" for i in range(23))
        + "bad,X\n"
    ).encode("utf-16")  # BOM + UTF-16, split mid-character below

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    batches: list[list[LaunchRequest]] = []

    async def enqueue(batch: list[LaunchRequest]) -> None:
        batches.append(batch)

    report = await import_csv(chunks(), _campaign(), enqueue, batch_size=10)
    assert [len(b) for b in batches] == [10, 10, 3]
    assert report.accepted == 23
    assert [r.row for r in report.rejected] == [25]
    assert batches[2][-1].number == "+12125550122"


@pytest.mark.parametrize(
    "header", ["Phone Number", " PHONE ", "phone_number", "number", "to", "Phone-No"]
)
def test_phone_header_spellings(header: str) -> None:
    launches, _ = _run(f"{header},customer_name\n2125550143,A\n")
    assert [launch.number for launch in launches] == ["+12125550143"]


def test_old_mac_line_ends_and_bomless_utf16() -> None:
    launches, _ = _run(b"phone,customer_name\r2125550143,A\r2125550144,B\r")
    assert [launch.row for launch in launches] == [2, 3]
    text = "phone\tcustomer_name\r\n2125550143\tA\r\n"
    launches, report = _run(text.encode("utf-16-le"))
    assert report.encoding == "utf-16-le"
    assert launches[0].variables["customer_name"] == "A"


def test_an_unclosed_quote_rejects_its_row_only() -> None:
    good = "".join(f"21255502{i:02d},N{i}\n" for i in range(60))
    text = 'phone,customer_name\n2125550143,"Never closed\n' + good
    launches, report = _run(text)
    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "has a quote that is never closed")
    ]
    assert len(launches) == 60
    assert launches[0].row == 3
    assert launches[-1].number == "+12125550259"


def test_unclosed_quote_on_the_last_row() -> None:
    launches, report = _run('phone,customer_name\n2125550143,A\n2125550144,"B\n')
    assert len(launches) == 1
    assert [r.row for r in report.rejected] == [3]


def test_literal_quotes_inside_cells_are_kept() -> None:
    text = "phone,customer_name\n2125550143,Jo 5'11\" tall\n2125550144,B\n"
    launches, report = _run(text)
    assert report.rejected == []
    assert launches[0].variables["customer_name"] == "Jo 5'11\" tall"
    assert launches[1].row == 3


class _CountingStream(io.RawIOBase):
    """A 'file' of many rows generated on demand; counts how far it was read."""

    def __init__(self, rows: int) -> None:
        self._rows = iter(range(rows))
        self.served = 0
        self._header = b"phone,customer_name\n"

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = self._header
        self._header = b""
        while len(out) < max(size, 1):
            i = next(self._rows, None)
            if i is None:
                break
            out += f"212{200 + i // 10_000:03d}{i % 10_000:04d},N\n".encode()
            self.served += 1
        return out


def test_rows_stream_out_before_the_file_is_read() -> None:
    stream = _CountingStream(200_000)
    launches = CsvImport(_campaign()).launches(stream)  # type: ignore[arg-type]
    first = next(launches)
    assert first.number == "+12122000000"
    assert stream.served < 10_000  # one 64 KiB chunk, not 200,000 rows
