"""Corpus recordings through a Twilio stream, the server and the reference agent."""

from __future__ import annotations

import numpy as np

from mediaserver.agent import protocol as ap
from mediaserver.amd.events import FinalActionKind, Label
from mediaserver.codecs.g711 import ulaw_to_pcm
from mediaserver.corpus import default_corpus_dir, load_manifest
from mediaserver.ids import new_id
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import (
    InMemoryPlans,
    MediaServer,
    MediaServerSettings,
    OutcomeLog,
)
from mediaserver.plan import CallPlan, EndType
from mediaserver.testing.twilio_stream import TwilioStream
from tests.media.helpers import SECRET, SPEED, Rig, amd, corpus_audio, media_token

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

    # Stop speaking came while the greeting ran (server stream time)...
    record = rig.agent.sessions[plan.call_id]
    assert record.events.index("stop_speaking") < record.events.index("final_action")
    stop = next(m for m in record.messages if isinstance(m, ap.StopSpeakingEvent))
    assert stop.at_ms < beep_onset_ms(MACHINE)
    # ...and cleared the carrier's buffer; the message played after the beep.
    kinds = [e.kind for e in stream.timeline]
    assert "clear" in kinds, "no clear reached the carrier"
    after_clear = stream.timeline[kinds.index("clear") :]
    spoken = [e for e in after_clear if e.kind == "media"]
    assert spoken, "the message was never played"
    assert spoken[0].at_ms > beep_onset_ms(MACHINE)
    final = next(m for m in record.messages if isinstance(m, ap.FinalActionEvent))
    assert final.at_ms > beep_onset_ms(MACHINE)
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
    digits = [m.digit for m in messages if isinstance(m, ap.DtmfEvent)]
    assert digits == ["7"]


async def test_llm_check_gets_the_greeting_and_its_answer_joins_the_verdict(
    rig: Rig,
) -> None:
    asked: list[tuple[int, float]] = []

    async def model_says_machine(audio: np.ndarray, budget_s: float) -> Label | None:
        asked.append((len(audio), budget_s))
        return Label.MACHINE

    engine = AmdEngine(vad=rig.engine.vad, llm_check=model_says_machine)
    plans = InMemoryPlans()
    outcomes = OutcomeLog()
    server = MediaServer(
        MediaServerSettings(secret=SECRET), plans=plans, observer=outcomes, amd=engine
    )
    async with server:
        call_id = new_id()
        plans.add(
            CallPlan(
                call_id=call_id,
                campaign_id="camp-1",
                conversation_id=new_id(),
                agent_url=rig.agent.url,
                amd=amd(llm_verification=True),
            )
        )
        stream = TwilioStream(
            server.url("twilio"), token=media_token(call_id), speed=SPEED
        )
        async with stream:
            await stream.play(corpus_audio(MACHINE), hold_s=120.0)
            await stream.wait_closed()
        outcome = await outcomes.wait_outcome(call_id)

    assert len(asked) == 1
    assert asked[0][0] > 8000  # at least a second of greeting went to the model
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.MACHINE
