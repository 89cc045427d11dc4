"""Corpus recordings through a Twilio stream, the server and the reference agent."""

from __future__ import annotations

import numpy as np

from mediaserver.amd.events import FinalActionKind, Label
from mediaserver.codecs.g711 import ulaw_to_pcm
from mediaserver.corpus import default_corpus_dir, load_manifest
from mediaserver.plan import EndType
from mediaserver.testing.twilio_stream import TwilioStream
from tests.media.helpers import SPEED, Rig, amd, corpus_audio

MACHINE = "machine/asterisk_en_vm_unavailable_ext1234_beep.wav"
HUMAN = "human/asterisk_en_hello_padded.wav"


def beep_onset_ms(name: str) -> int:
    entry = next(e for e in load_manifest(default_corpus_dir()) if e.name in name)
    assert entry.beep_onset_s is not None
    return int(entry.beep_onset_s * 1000)


async def test_machine_with_beep_stops_the_agent_then_leaves_a_message(
    rig: Rig,
) -> None:
    plan, token = rig.plan()
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        # A voicemail keeps recording after its beep until we hang up.
        await stream.play(corpus_audio(MACHINE), hold_s=120.0)
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.MACHINE
    assert outcome.end_type == EndType.VOICEMAIL_ENDED
    assert stream.close_code == 1000

    # Stop speaking cleared the carrier's buffer while the greeting ran...
    clears = stream.events("clear")
    assert clears, "no clear reached the carrier"
    assert clears[0].at_ms < beep_onset_ms(MACHINE)
    # ...and the message started only after the beep.
    spoken = [e for e in stream.events("media") if e.at_ms >= clears[0].at_ms]
    assert spoken, "the message was never played"
    assert spoken[0].at_ms > beep_onset_ms(MACHINE)

    record = rig.agent.sessions[plan.call_id]
    assert record.events.index("stop_speaking") < record.events.index("final_action")
    final = next(
        m for m in record.messages if m.__struct_config__.tag == "final_action"
    )
    assert final.action == FinalActionKind.LEAVE_MESSAGE.value
    assert final.script == plan.leave_message_script
    assert record.left_message
    assert record.hung_up
    assert [t.text for t in outcome.turns][-1] == plan.leave_message_script
    assert record.audio_in_bytes > 8000  # the agent heard the call


async def test_human_answer_gets_the_opening_and_no_clear(rig: Rig) -> None:
    plan, token = rig.plan()
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(corpus_audio(HUMAN))
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    assert outcome.end_type == EndType.USER_HANGUP
    assert stream.clears == 0
    record = rig.agent.sessions[plan.call_id]
    assert "stop_speaking" not in record.events
    assert record.start.opening_script == plan.opening_script
    assert record.start.media_format.encoding == "pcmu"
    # The agent's speech reached the carrier as well-formed mu-law frames.
    assert len(stream.outbound) >= 160
    assert len(stream.outbound) % 160 == 0
    assert np.abs(ulaw_to_pcm(bytes(stream.outbound))).max() > 1000
    assert rig.outcomes.answered[plan.call_id] == outcome.started_at


async def test_end_call_final_action_hangs_up_the_stream(rig: Rig) -> None:
    plan, token = rig.plan(amd=amd(final_action=FinalActionKind.END_CALL))
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(corpus_audio(MACHINE), hold_s=10.0)
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)
    assert outcome.end_type == EndType.AMD_END_CALL
    assert stream.close_code == 1000
    assert "final_action" in rig.agent.sessions[plan.call_id].events
    assert not rig.agent.sessions[plan.call_id].left_message


async def test_session_start_carries_numbers_only_when_injected(rig: Rig) -> None:
    numbers = {"from_number": "+14155550100", "to_number": "+14155550199"}
    shown, shown_token = rig.plan(
        inject_numbers=True, variables={"name": "Ahmed"}, **numbers
    )
    hidden, hidden_token = rig.plan(inject_numbers=False, **numbers)
    for token in (shown_token, hidden_token):
        stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
        async with stream:
            await stream.play(corpus_audio(HUMAN))
    await rig.outcomes.wait_outcome(shown.call_id)
    await rig.outcomes.wait_outcome(hidden.call_id)

    start = rig.agent.sessions[shown.call_id].start
    assert (start.from_number, start.to_number) == ("+14155550100", "+14155550199")
    assert start.variables == {"name": "Ahmed"}
    assert start.conversation_id == shown.conversation_id
    hidden_start = rig.agent.sessions[hidden.call_id].start
    assert (hidden_start.from_number, hidden_start.to_number) == (None, None)


async def test_dtmf_reaches_the_agent(rig: Rig) -> None:
    plan, token = rig.plan(amd=amd(enabled=False))
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(corpus_audio(HUMAN)[:8000], stop=False)
        await stream.send_dtmf("7")
        await stream.play(corpus_audio(HUMAN)[:8000])
    await rig.outcomes.wait_outcome(plan.call_id)
    messages = rig.agent.sessions[plan.call_id].messages
    digits = [m.digit for m in messages if m.__struct_config__.tag == "dtmf"]
    assert digits == ["7"]
