"""The campaign demo end to end: API, CSV, simulated carrier, media, AMD, agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.campaign_demo import run_campaign_demo
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import ConfigError

CORPUS = default_corpus_dir()
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason="the labelled corpus is absent"
)


@needs_corpus
async def test_demo_runs_every_contact_to_its_end() -> None:
    lines: list[str] = []
    report = await run_campaign_demo(
        CORPUS, speed=16.0, timeout_s=60.0, out=lines.append
    )
    by_number = {c.number: c for c in report.contacts}

    assert report.accepted == 12
    assert [r["row"] for r in report.rejected] == [14]
    assert "customer_name" in report.rejected[0]["reason"]
    assert len(by_number) == 12

    # Caller ID follows the destination's prefix, on every attempt.
    assert by_number["+447911123200"].caller_number == "+442079460000"
    assert by_number["+96891234611"].caller_number == "+96824000000"
    assert by_number["+12025550199"].caller_number == "+12025550100"

    # Busy, no answer and decline are each retried up to the cap (1 + 2).
    for number, status in [
        ("+12025550199", "busy"),
        ("+447911123200", "no_answer"),
        ("+96891234611", "declined"),
    ]:
        assert [a.status for a in by_number[number].attempts] == [status] * 3
    refused = by_number["+12025550222"].attempts
    assert [a.status for a in refused] == ["initiation_failed"]

    # Machines that end in a beep get the message; people are people.
    for number in ("+12025550111", "+447911123122", "+96891234533"):
        contact = by_number[number]
        assert contact.attempts[0].verdict == "machine", contact
        assert contact.left_message, contact
    for number in ("+12025550166", "+447911123177", "+96891234588"):
        contact = by_number[number]
        assert contact.attempts[0].verdict == "human", contact
        assert not contact.left_message

    # Each attempt's lifecycle events carry the seed's names.
    for contact in report.contacts:
        for attempt in contact.attempts:
            if attempt.status == "completed":
                assert attempt.events == [
                    "call_initiated",
                    "call_answered",
                    "call_ended",
                ]
    assert by_number["+447911123200"].attempts[-1].events[-1] == "call_missed"
    assert refused[0].events == ["call_initiation_failure"]

    assert any("attempts -> outcome" in line for line in lines)


async def test_demo_without_the_corpus_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CALLWRIGHT_CORPUS"):
        await run_campaign_demo(tmp_path, out=lambda _: None)
