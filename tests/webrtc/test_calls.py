"""Corpus recordings from an aiortc peer through signaling, the session and AMD."""

from __future__ import annotations

import asyncio

import numpy as np

from mediaserver.amd.events import Label
from mediaserver.corpus import default_corpus_dir, load_manifest, read_wav
from mediaserver.plan import EndType
from tests.webrtc.conftest import Rig
from tests.webrtc.peer import TestPeer

MACHINE = "machine/freeswitch_callie_vm_not_available_tone640.wav"
HUMAN = "human/asterisk_en_hello_padded.wav"


def recording(name: str) -> np.ndarray:
    return read_wav(default_corpus_dir() / name)


def beep_onset_s(name: str) -> float:
    entry = next(e for e in load_manifest(default_corpus_dir()) if e.name in name)
    assert entry.beep_onset_s is not None
    return entry.beep_onset_s


async def test_human_answer_gets_human_and_hangup_is_user_hangup(rig: Rig) -> None:
    plan, token = rig.plan()
    peer = TestPeer(recording(HUMAN))
    try:
        response = await peer.offer(rig.http, rig.url, token)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "answer"
        await asyncio.wait_for(peer.track.finished.wait(), 15)
        await asyncio.sleep(0.5)
    finally:
        await peer.hang_up()
    outcome = await rig.outcomes.wait_outcome(plan.call_id, within_s=10)

    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    assert outcome.end_type == EndType.USER_HANGUP
    record = rig.agent.sessions[plan.call_id]
    assert record.start.carrier == "webrtc"
    assert record.start.media_format.encoding == "pcmu"
    assert record.audio_in_bytes > 8000 * 3  # the agent heard the recording
    # The agent's opening reached the peer as audible speech.
    heard = peer.audio()
    assert len(heard) > 8000
    assert np.abs(heard).max() > 1000
