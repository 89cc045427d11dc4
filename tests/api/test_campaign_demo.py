"""The campaign demo end to end: API, CSV, carrier, media, AMD, agent, webhooks,
post-call analysis and LLM verification, over each provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.campaign_demo import DemoReport, run_campaign_demo
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import ConfigError

CORPUS = default_corpus_dir()
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason="the labelled corpus is absent"
)
MESSAGE_MACHINES = ("+12025550111", "+447911123122", "+96891234533")
HUMANS = ("+12025550166", "+447911123177", "+96891234588")
SIX_EVENTS = {
    "call_initiation_failure",
    "call_initiated",
    "call_declined",
    "call_missed",
    "call_answered",
    "call_ended",
}


@needs_corpus
@pytest.mark.parametrize("provider", ["simulated", "twilio", "telnyx"])
async def test_demo_runs_every_contact_to_its_end(provider: str) -> None:
    lines: list[str] = []
    report = await run_campaign_demo(
        CORPUS, speed=16.0, provider=provider, timeout_s=60.0, out=lines.append
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

    # Machines that end in a beep get the message and end voicemail_ended;
    # people are people and hang up (or are hung up on).
    for number in MESSAGE_MACHINES:
        contact = by_number[number]
        assert contact.attempts[0].verdict == "machine", contact
        assert contact.left_message, contact
        assert contact.attempts[0].end_type == "voicemail_ended", contact
    for number in HUMANS:
        contact = by_number[number]
        assert contact.attempts[0].verdict == "human", contact
        assert not contact.left_message
        assert contact.attempts[0].end_type in ("user_hangup", "agent_hangup")

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

    _check_webhooks(report)
    _check_conversations(report)
    if provider != "simulated":
        assert report.callbacks_sent > 0
        assert report.callbacks_accepted == report.callbacks_sent
    assert any("attempts: outcomes" in line for line in lines)
    assert not any("+12025550111" in line for line in lines)  # masked in print


def _check_webhooks(report: DemoReport) -> None:
    """Every event of every attempt reached the receiver, signed and verified."""
    tallies = {t.event: t for t in report.webhooks}
    assert set(tallies) == SIX_EVENTS
    for tally in tallies.values():
        assert tally.fired > 0, tally
        assert tally.delivered == tally.fired, tally
        assert tally.verified == tally.fired, tally
    payload = report.example_payload
    assert payload is not None
    assert payload["event"] == "call_ended"
    assert payload["recipient"].startswith("+")
    assert payload["end_type"] in ("voicemail_ended", "user_hangup", "amd_end_call")
    assert "Agent:" in payload["transcript"]


def _check_conversations(report: DemoReport) -> None:
    """Transcripts from the agent's turns; analyses in the template's shape."""
    answered = [c for c in report.contacts if c.attempts[-1].status == "completed"]
    assert len(answered) == 8
    for contact in answered:
        assert contact.transcript.startswith("Agent: "), contact
        analysis = contact.analysis
        assert analysis is not None, contact
        assert "error" not in analysis, contact
        end_type = contact.attempts[-1].end_type
        # The calls API and the call_ended event agree on how it ended.
        assert contact.attempts[-1].conversation_end_type == end_type, contact
        assert analysis["fields"]["end_type"] == end_type
        voicemail = end_type == "voicemail_ended"
        assert analysis["fields"]["left_message"] is voicemail
        assert ("voicemail" in analysis["tags"]) is voicemail
    for number in MESSAGE_MACHINES:
        contact = next(c for c in answered if c.number == number)
        assert "Sorry we missed you" in contact.transcript
    # The verification path ran: the stand-in model answered machine greetings.
    assert sum(report.llm_labels.values()) > 0
    assert set(report.llm_labels) <= {"human", "machine"}


async def test_demo_without_the_corpus_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CALLWRIGHT_CORPUS"):
        await run_campaign_demo(tmp_path, out=lambda _: None)
