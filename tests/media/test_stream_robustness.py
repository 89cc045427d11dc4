"""What real streams do wrong: each case is counted and the call goes on."""

from __future__ import annotations

import base64
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from mediaserver.amd.events import Label
from mediaserver.plan import EndType
from mediaserver.session import CallSession
from mediaserver.testing.twilio_stream import TwilioStream
from tests.media.helpers import SPEED, Rig, amd, corpus_audio, silence

HUMAN = "human/asterisk_en_hello_padded.wav"


def last_session(rig: Rig, call_id: str) -> CallSession:
    return next(s for s in reversed(rig.server.recent) if s.call_id == call_id)


async def test_media_before_start_is_counted_and_the_call_goes_on(rig: Rig) -> None:
    plan, token = rig.plan()
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    await stream.open(send_start=False)
    try:
        for _ in range(5):
            await stream.send_frame(b"\xff" * 160)
        await stream.send_json(stream.start_message())
        await stream.play(corpus_audio(HUMAN))
    finally:
        await stream.close()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    assert last_session(rig, plan.call_id).counters.counts["media_before_start"] == 5


async def test_no_start_closes_with_a_reason(rig: Rig) -> None:
    stream = TwilioStream(rig.server.url("twilio"), token=None, speed=SPEED)
    await stream.open(send_start=False)
    try:
        await stream.wait_closed(within_s=5)
    finally:
        await stream.close()
    assert stream.close_code == 1008
    assert "no start" in stream.close_reason
    assert rig.agent.sessions == {}


async def test_bad_messages_mid_call_are_skipped_and_counted(rig: Rig) -> None:
    plan, token = rig.plan()
    audio = corpus_audio(HUMAN)
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(audio[:4000], stop=False)
        sid = stream.stream_sid
        await stream.send_raw("{this is not json")
        await stream.send_raw(b"\x00\x01\x02 binary frame")
        await stream.send_raw(
            json.dumps(
                {
                    "event": "media",
                    "streamSid": sid,
                    "media": {"chunk": "999", "payload": "%%not-base64%%"},
                }
            )
        )
        await stream.send_raw(
            json.dumps({"event": "media", "streamSid": sid, "media": {"payload": ""}})
        )
        await stream.send_raw(json.dumps({"event": "telemetry", "streamSid": sid}))
        await stream.send_raw(json.dumps({"event": "media", "streamSid": sid}))
        await stream.play(audio[4000:])
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.end_type == EndType.USER_HANGUP
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    counts = last_session(rig, plan.call_id).counters.counts
    for kind in (
        "malformed_json",
        "binary_frame",
        "bad_base64",
        "empty_payload",
        "unknown_event",
        "invalid_message",
    ):
        assert counts[kind] == 1, kind
    assert rig.server.metrics()["binary_frame"] >= 1


async def test_deeply_nested_json_is_a_bad_message_not_a_crash(rig: Rig) -> None:
    plan, token = rig.plan()
    audio = corpus_audio(HUMAN)
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    await stream.open(send_start=False)
    try:
        await stream.send_raw("[" * 5000)  # before start: no token needed to send it
        await stream.send_json(stream.start_message())
        await stream.play(audio[:4000], stop=False)
        for _ in range(3):
            await stream.send_raw("[" * 5000 + "]" * 5000)
        await stream.play(audio[4000:])
        await stream.wait_closed()
    finally:
        await stream.close()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.end_type == EndType.USER_HANGUP
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    counts = last_session(rig, plan.call_id).counters.counts
    assert counts["malformed_json"] + counts.get("invalid_message", 0) >= 3
    assert counts.get("frame_errors", 0) == 0


async def test_missing_chunks_become_silence_and_stream_time_stays_true(
    rig: Rig,
) -> None:
    plan, token = rig.plan(amd=amd(enabled=False))
    dropped = frozenset(range(20, 30))
    stream = TwilioStream(
        rig.server.url("twilio"), token=token, speed=SPEED, drop_chunks=dropped
    )
    async with stream:
        await stream.play(silence(2.0))
        await stream.wait_closed()
    await rig.outcomes.wait_outcome(plan.call_id)
    session = last_session(rig, plan.call_id)
    assert session.stream_ms == 2000
    assert session.counters.counts["gaps"] == 1
    assert session.counters.counts["silence_frames"] == 10
    assert session.counters.frames_in == 100 - 10


async def test_abrupt_disconnect_ends_the_call_as_a_hang_up(rig: Rig) -> None:
    plan, token = rig.plan()
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(corpus_audio(HUMAN)[:8000], stop=False)
        await stream.abort()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)
    assert outcome.end_type == EndType.USER_HANGUP
    assert last_session(rig, plan.call_id).counters.counts["abrupt_disconnects"] == 1
    assert rig.agent.sessions[plan.call_id].events[-1] == "end"


async def test_unknown_path_is_refused_before_the_upgrade(rig: Rig) -> None:
    url = rig.server.url("twilio").replace("/media/twilio", "/media/other")
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    assert info.value.response.status_code == 404


async def test_max_call_time_ends_with_timeout(rig: Rig) -> None:
    plan, token = rig.plan(amd=amd(enabled=False), max_call_s=1)
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=1.0)
    async with stream:
        await stream.play(silence(3.0), stop=False)
    outcome = await rig.outcomes.wait_outcome(plan.call_id)
    assert outcome.end_type == EndType.TIMEOUT
    assert stream.close_code == 1000
    assert stream.frames_sent < 150  # the server hung up before the audio ran out


async def test_a_second_start_is_counted_not_obeyed(rig: Rig) -> None:
    plan, token = rig.plan(amd=amd(enabled=False))
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(silence(0.2), stop=False)
        await stream.send_json(stream.start_message())
        await stream.play(silence(0.2))
    await rig.outcomes.wait_outcome(plan.call_id)
    session = last_session(rig, plan.call_id)
    assert session.counters.counts["repeated_start"] == 1
    assert session.stream_ms == 400


def test_payload_helper_matches_twilio_sizes() -> None:
    assert len(base64.b64encode(b"\xff" * 160)) == 216
