"""Streams without a valid per-call media token are refused with 1008."""

from __future__ import annotations

import pytest

from mediaserver import tokens
from mediaserver.ids import new_id
from mediaserver.testing.telnyx_stream import TelnyxStream
from mediaserver.testing.twilio_stream import TwilioStream
from tests.media.helpers import SECRET, SPEED, Rig, corpus_audio, media_token

HUMAN = "human/asterisk_en_hello_padded.wav"


def tampered(token: str) -> str:
    call_id, expiry, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    return f"{call_id}.{expiry}.{flipped}"


async def refused(rig: Rig, stream: TwilioStream | TelnyxStream) -> str:
    async with stream:
        await stream.play(corpus_audio(HUMAN)[:4000], stop=False)
        await stream.wait_closed(within_s=5)
    assert stream.close_code == 1008
    assert rig.agent.sessions == {}  # nothing reached any agent
    assert rig.outcomes.answered == {}
    return stream.close_reason


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda call_id: None, "missing"),
        (lambda call_id: "not-a-token", "malformed"),
        (lambda call_id: tampered(media_token(call_id)), "signature"),
        (lambda call_id: media_token(call_id, ttl_s=-5), "expired"),
        (
            lambda call_id: tokens.issue(SECRET.encode(), call_id, purpose="agent"),
            "signature",
        ),
        (lambda call_id: tokens.issue(b"another secret", call_id), "signature"),
    ],
    ids=["unsigned", "malformed", "tampered", "expired", "agent-token", "other-key"],
)
async def test_twilio_stream_refused(rig: Rig, make_token: object, reason: str) -> None:
    plan, _ = rig.plan()
    token = make_token(plan.call_id)  # type: ignore[operator]
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    assert reason in await refused(rig, stream)


async def test_valid_token_for_an_unknown_call_is_refused(rig: Rig) -> None:
    stream = TwilioStream(
        rig.server.url("twilio"), token=media_token(new_id()), speed=SPEED
    )
    assert "unknown call" in await refused(rig, stream)


async def test_telnyx_stream_with_tampered_header_token_is_refused(rig: Rig) -> None:
    _, token = rig.plan()
    stream = TelnyxStream(rig.server.url("telnyx"), token=tampered(token), speed=SPEED)
    assert "signature" in await refused(rig, stream)
