"""Corpus recordings from an aiortc peer through signaling, the session and AMD.

WebRTC runs at real time, so the recordings are short: the human hello is
3.8 s and the voicemail greeting is cut to its last second of speech, its
beep and the silence after it.
"""

from __future__ import annotations

import asyncio
import re

import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.events import FinalActionKind, Label
from mediaserver.corpus import default_corpus_dir, read_wav
from mediaserver.plan import EndType
from mediaserver.session import CallSession
from tests.webrtc.conftest import Rig
from tests.webrtc.peer import TestPeer

MACHINE = "machine/freeswitch_callie_vm_not_available_tone640.wav"  # beep 5.571 s
HUMAN = "human/asterisk_en_hello_padded.wav"


def recording(name: str, start_s: float = 0.0, end_s: float | None = None) -> NDArray:
    pcm = read_wav(default_corpus_dir() / name)
    end = None if end_s is None else int(end_s * 8000)
    return pcm[int(start_s * 8000) : end]


def candidate_hosts(sdp: str) -> set[str]:
    # a=candidate:<foundation> <component> <proto> <priority> <address> <port> ...
    return {m.group(1) for m in re.finditer(r"a=candidate:\S+ \d \S+ \d+ (\S+)", sdp)}


async def session_of(rig: Rig, call_id: str) -> CallSession:
    await asyncio.wait_for(rig.transport.wait_closed(call_id), 10)
    return next(s for s in rig.transport.recent if s.call_id == call_id)


async def play_then_hang_up(rig: Rig, peer: TestPeer, token: str) -> str:
    """Offer, play the whole recording, hang up; returns the answer SDP."""
    try:
        response = await peer.offer(rig.http, rig.url, token)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "answer"
        await asyncio.wait_for(peer.track.finished.wait(), 15)
        await asyncio.sleep(0.3)
    finally:
        await peer.hang_up()
    return str(response.json()["sdp"])


async def test_human_answer_gets_human_and_hangup_is_user_hangup(rig: Rig) -> None:
    plan, token = rig.plan()
    peer = TestPeer(recording(HUMAN))
    answer = await play_then_hang_up(rig, peer, token)
    outcome = await rig.outcomes.wait_outcome(plan.call_id, within_s=10)

    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    assert outcome.end_type == EndType.USER_HANGUP
    assert rig.outcomes.answered[plan.call_id] == outcome.started_at
    record = rig.agent.sessions[plan.call_id]
    assert record.start.carrier == "webrtc"
    assert record.start.media_format.encoding == "pcmu"
    assert "stop_speaking" not in record.events
    # The agent heard about the whole recording (3.8 s of 8 kHz mu-law).
    assert record.audio_in_bytes >= 8000 * 3.5
    # The agent's opening reached the peer as audible speech.
    heard = peer.audio()
    assert len(heard) > 8000
    assert np.abs(heard).max() > 1000
    # Every candidate on both sides stayed on loopback.
    assert candidate_hosts(answer) == {"127.0.0.1"}
    assert candidate_hosts(peer.pc.localDescription.sdp) == {"127.0.0.1"}
    await asyncio.wait_for(rig.transport.wait_closed(plan.call_id), 10)
    assert rig.transport.calls == {}


async def test_machine_with_beep_leaves_a_message_and_hangs_up_the_peer(
    rig: Rig,
) -> None:
    plan, token = rig.plan()
    peer = TestPeer(recording(MACHINE, 3.0, 6.6))  # beep at 2.57 s of the cut
    try:
        response = await peer.offer(rig.http, rig.url, token)
        assert response.status_code == 200, response.text
        # A voicemail records silence until we hang up: the server must close.
        await asyncio.wait_for(peer.closed_by_server.wait(), 20)
    finally:
        await peer.hang_up()
    outcome = await rig.outcomes.wait_outcome(plan.call_id, within_s=10)

    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.MACHINE
    assert outcome.end_type == EndType.VOICEMAIL_ENDED
    record = rig.agent.sessions[plan.call_id]
    assert record.events.index("stop_speaking") < record.events.index("final_action")
    final = next(
        m for m in record.messages if m.__struct_config__.tag == "final_action"
    )
    assert final.action == FinalActionKind.LEAVE_MESSAGE.value
    assert record.left_message
    assert record.hung_up
    session = await session_of(rig, plan.call_id)
    assert session.counters.counts["clears_sent"] >= 1
    # The hang-up waited for the message's last mark to come back played.
    assert session.counters.counts["hangup_drain_timeouts"] == 0
    assert np.abs(peer.audio()).max() > 1000  # the message was heard


async def test_pcmu_only_answer_carries_the_call(pcmu_rig: Rig) -> None:
    rig = pcmu_rig
    plan, token = rig.plan()
    peer = TestPeer(recording(HUMAN))
    answer = await play_then_hang_up(rig, peer, token)
    outcome = await rig.outcomes.wait_outcome(plan.call_id, within_s=10)

    audio_line = next(line for line in answer.splitlines() if line.startswith("m="))
    assert audio_line.split()[3:] == ["0"]  # PCMU's static payload type only
    assert "opus" not in answer
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
    assert outcome.end_type == EndType.USER_HANGUP
    assert np.abs(peer.audio()).max() > 1000


async def test_bye_over_signaling_ends_the_call_as_user_hangup(rig: Rig) -> None:
    plan, token = rig.plan()
    peer = TestPeer(recording(HUMAN))
    try:
        response = await peer.offer(rig.http, rig.url, token)
        assert response.status_code == 200, response.text
        await asyncio.sleep(1.0)
        bye = await rig.http.post(f"{rig.url}/bye", json={"token": token})
        assert bye.status_code == 204, bye.text
        await asyncio.wait_for(peer.closed_by_server.wait(), 10)
    finally:
        await peer.hang_up()
    outcome = await rig.outcomes.wait_outcome(plan.call_id, within_s=10)
    assert outcome.end_type == EndType.USER_HANGUP
    # A bye for a call that is over finds nothing.
    again = await rig.http.post(f"{rig.url}/bye", json={"token": token})
    assert again.status_code == 404


async def test_lost_packets_are_filled_so_stream_time_stays_true(
    codec_rig: Rig,
) -> None:
    rig = codec_rig
    plan, token = rig.plan()
    peer = TestPeer(recording(HUMAN), drop_every=5)  # 20 % loss
    await play_then_hang_up(rig, peer, token)
    outcome = await rig.outcomes.wait_outcome(plan.call_id, within_s=10)
    session = await session_of(rig, plan.call_id)

    assert peer.track.dropped >= 30
    assert session.counters.counts["gaps"] >= peer.track.dropped // 2
    # Silence took the lost frames' place: the stream is as long as it was
    # played (3.8 s), not 20 % shorter.
    assert session.stream_ms >= 3600
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN
