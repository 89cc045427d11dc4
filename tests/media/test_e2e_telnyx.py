"""Telnyx media streaming: PCMU and PCMA, header or parameter token, reordering."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from mediaserver.agent.reference import voiced_signal
from mediaserver.amd.events import Label
from mediaserver.codecs.g711 import pcm_to_alaw, pcm_to_ulaw
from mediaserver.plan import EndType
from mediaserver.testing.telnyx_stream import TelnyxStream
from tests.media.helpers import SPEED, Rig, amd, corpus_audio, silence

HUMAN = "human/asterisk_fr_hello_padded.wav"


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
async def test_human_answer_in_either_law(
    rig: Rig, law: Literal["PCMU", "PCMA"]
) -> None:
    plan, token = rig.plan()
    stream = TelnyxStream(
        rig.server.url("telnyx"), token=token, encoding=law, speed=SPEED
    )
    async with stream:
        await stream.play(corpus_audio(HUMAN))
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    assert outcome.end_type == EndType.USER_HANGUP
    record = rig.agent.sessions[plan.call_id]
    assert record.start.carrier == "telnyx"
    assert record.start.media_format.encoding == law.lower()
    # The agent's audio comes back in the stream's own law, byte for byte.
    encode = pcm_to_alaw if law == "PCMA" else pcm_to_ulaw
    assert bytes(stream.outbound[:160]) == encode(voiced_signal(1000)[:160])


async def test_token_in_custom_parameters(rig: Rig) -> None:
    plan, token = rig.plan(amd=amd(enabled=False))
    stream = TelnyxStream(
        rig.server.url("telnyx"), token=token, token_in="parameters", speed=SPEED
    )
    async with stream:
        await stream.play(silence(0.5))
    outcome = await rig.outcomes.wait_outcome(plan.call_id)
    assert outcome.end_type == EndType.USER_HANGUP
    assert plan.call_id in rig.agent.sessions


async def test_swapped_frames_are_put_back_in_order(rig: Rig) -> None:
    plan, token = rig.plan(amd=amd(enabled=False))
    ramp = (np.arange(8000) * 3 - 12000).astype(np.int16)  # every frame differs
    stream = TelnyxStream(
        rig.server.url("telnyx"), token=token, speed=SPEED, swap_pairs=True
    )
    async with stream:
        await stream.play(ramp)
        await stream.wait_closed()
    await rig.outcomes.wait_outcome(plan.call_id)
    session = next(s for s in rig.server.recent if s.call_id == plan.call_id)
    assert session.stream_ms == 1000
    assert session.counters.counts["late_frames"] == 0
    assert session.counters.counts["gaps"] == 0
