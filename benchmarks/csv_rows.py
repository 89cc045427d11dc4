"""CSV import throughput: rows read, normalised and validated per second.

    .venv/bin/python -m benchmarks.csv_rows [rows]

Builds a file in memory (default 100,000 rows: US and UK numbers written
the ways people write them, three typed variables, a metadata column, and
one row in fifty damaged as spreadsheets damage them), then times
`CsvImport` over it as UTF-8 and as Excel's UTF-16 "Unicode text". Also
times `prepare_launch` alone, to show what the CSV layer adds. DESIGN.md
sets no target for this; the figures are printed for the README.
"""

from __future__ import annotations

import io
import random
import resource
import sys
import time

from mediaserver.controller.campaign import Campaign, parse_campaign
from mediaserver.controller.csv_import import CsvImport
from mediaserver.controller.launch import prepare_launch

_DAMAGED = ("4.47400123456E+11", "2125550143.0", "447400123456", "12", "")


def _campaign() -> Campaign:
    return parse_campaign(
        {
            "id": "bench",
            "name": "CSV benchmark",
            "agent_url": "ws://127.0.0.1:9/agent",
            "default_region": "US",
            "caller_id": {
                "default": {"id": "us", "number": "+12125550100"},
                "overrides": [
                    {
                        "prefix": "+44",
                        "number": {"id": "uk", "number": "+447400123456"},
                    },
                    {
                        "prefix": "+1415",
                        "number": {"id": "sf", "number": "+14155550100"},
                    },
                ],
            },
            "variables": [
                {"name": "customer_name", "required": True},
                {"name": "age", "type": "integer"},
                {"name": "vip", "type": "boolean", "default": False},
            ],
            "metadata": [{"name": "crm_id"}],
        }
    )


def _number(i: int, rng: random.Random) -> str:
    """A unique number for each i (below a million), written one of four ways."""
    exchange, line = 200 + (i // 10_000) % 800, f"{i % 10_000:04d}"
    style = rng.randrange(4)
    if style == 0:
        return f"(212) {exchange}-{line}"
    if style == 1:
        return f"+1 415 {exchange} {line}"
    if style == 2:
        return f"+44 7400 {i % 1_000_000:06d}"
    return f"1-646-{exchange}-{line}"


def build_file(rows: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("Phone Number,Customer Name,Age,VIP,meta:crm_id\r\n")
    for i in range(rows):
        number = _number(i, rng)
        if i % 50 == 49:
            number = _DAMAGED[(i // 50) % len(_DAMAGED)]
        out.write(
            f"{number},Name {i},{20 + i % 60},{'yes' if i % 7 == 0 else 'no'},C{i}\r\n"
        )
    return out.getvalue()


def _time_import(campaign: Campaign, data: bytes) -> tuple[float, float, int, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    job = CsvImport(campaign)
    accepted = sum(1 for _ in job.launches(io.BytesIO(data)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, accepted, len(job.report.rejected)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    campaign = _campaign()
    text = build_file(rows)
    print(f"csv import benchmark: {rows} rows, 1 in 50 damaged")

    for label, data in (
        ("utf-8, comma", text.encode()),
        ("utf-16 (Excel Unicode text), tab", text.replace(",", "\t").encode("utf-16")),
    ):
        wall, cpu, accepted, rejected = _time_import(campaign, data)
        print(
            f"  {label:34s} {rows / wall:8,.0f} rows/s wall, {rows / cpu:8,.0f} "
            f"rows/s CPU ({wall:.1f} s; {accepted} accepted, {rejected} rejected; "
            f"{len(data) / 1e6:.1f} MB)"
        )

    rng = random.Random(3)
    sample = [(_number(i, rng), f"Name {i}") for i in range(20_000)]
    cpu = time.process_time()
    for number, name in sample:
        prepare_launch(campaign, number, {"customer_name": name, "age": "42"})
    cpu = time.process_time() - cpu
    print(f"  {'prepare_launch alone':34s} {len(sample) / cpu:8,.0f} launches/s CPU")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak_mb:.0f} MB (the in-memory test files included)")


if __name__ == "__main__":
    main()
