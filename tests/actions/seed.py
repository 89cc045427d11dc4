"""The seed's variable tables, read from the product description itself."""

from __future__ import annotations

import os
import re
from pathlib import Path

_ROW = re.compile(r"^([a-z_]+) \| (String|Datetime|Object) \|")
_SECTIONS = {
    "1. Call Initiation Failure": "call_initiation_failure",
    "2. Call Initiated": "call_initiated",
    "3. Call Declined": "call_declined",
    "3. Call Missed": "call_missed",
    "4. Call Answered": "call_answered",
    "5. Call Ended": "call_ended",
    "Post-Analysis": "post_analysis",
}


def seed_path() -> Path:
    root = Path(__file__).resolve().parents[2]
    shared = Path(os.environ.get("CALLWRIGHT_SHARED", root.parent / "shared"))
    return shared / "seed" / "outbound-campaigns.txt"


def seed_tables() -> dict[str, list[str]]:
    """Variable names per section, in the seed's order."""
    tables: dict[str, list[str]] = {}
    current: str | None = None
    for line in seed_path().read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line in _SECTIONS:
            current = _SECTIONS[line]
            tables[current] = []
        elif line.startswith("Actions (Webhooks)"):
            current = None
        elif current is not None and (match := _ROW.match(line)):
            tables[current].append(match.group(1))
    return tables
