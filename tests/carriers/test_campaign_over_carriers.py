"""A small campaign end to end over the Twilio fake and over the Telnyx fake.

The run itself is `mediaserver.testing.carrier_demo` (also a demo command):
the controller with its SQLite queue, the media server with the ONNX VAD,
the reference agent, our dialers over the official SDKs, our signed
callback endpoints, and the carrier fakes streaming corpus recordings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.media_amd import AmdEngine
from mediaserver.testing.carrier_demo import CONTACTS, run_campaign


@pytest.fixture(scope="module")
def amd_engine() -> AmdEngine:
    return AmdEngine()


@pytest.mark.parametrize(
    ("provider", "codec"), [("twilio", "PCMU"), ("telnyx", "PCMU"), ("telnyx", "PCMA")]
)
async def test_campaign_over_carrier_fake(
    tmp_path: Path, provider: str, codec: str, amd_engine: AmdEngine
) -> None:
    result = await run_campaign(
        provider, codec=codec, db_path=tmp_path / "q.sqlite3", amd=amd_engine
    )
    by_number = {a.recipient_number: a for a in result.attempts}

    expected = {number: status for number, _, status in CONTACTS}
    assert {n: a.status.value for n, a in by_number.items()} == expected
    kinds = {number: kind for number, kind, _ in CONTACTS}
    for number, attempt in by_number.items():
        if kinds[number] in ("human", "machine"):
            assert attempt.verdict == kinds[number], number
        if expected[number] == "initiation_failed":
            assert "21211" in (attempt.initiation_error or "")
        else:
            assert attempt.provider_call_id, number
            assert attempt.calling_number_provider == provider

    # Every callback was signed and accepted; both answered calls streamed.
    assert len(result.callback_statuses) >= 2 * (len(CONTACTS) - 1)
    assert set(result.callback_statuses) == {204}
    assert len(result.streams) == 2
    assert all(s.frames_sent > 0 for s in result.streams)
    if provider == "telnyx":
        assert sorted(s.encoding for s in result.streams) == sorted([codec, "PCMU"])
