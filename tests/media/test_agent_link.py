"""The agent link: authentication, agent failures, clear and mark, hang-up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from mediaserver import tokens
from mediaserver.agent import protocol as ap
from mediaserver.amd.events import Label
from mediaserver.plan import EndType
from mediaserver.testing.twilio_stream import TwilioStream
from tests.media.helpers import SECRET, SPEED, Rig, amd, corpus_audio, silence

HUMAN = "human/asterisk_en_hello_padded.wav"
Script = Callable[[ServerConnection, ap.SessionStart], Awaitable[None]]


class ScriptedAgent:
    """An agent runtime on loopback that runs one script per session."""

    def __init__(self) -> None:
        self.script: Script | None = None
        self.call_ids: list[str] = []
        self.received: list[ap.ToAgent] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/agent"

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        bearer = ws.request.headers["Authorization"].removeprefix("Bearer ")
        self.call_ids.append(tokens.verify(SECRET.encode(), bearer, purpose="agent"))
        start = ap.decode_to_agent(await ws.recv())
        assert isinstance(start, ap.SessionStart)
        assert start.token == bearer
        assert self.script is not None
        await self.script(ws, start)

    async def drain(self, ws: ServerConnection) -> None:
        """Read (and keep) events until the server closes the link."""
        async for message in ws:
            if isinstance(message, str):
                self.received.append(ap.decode_to_agent(message))


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[ScriptedAgent]:
    agent = ScriptedAgent()
    async with serve(agent.handle, "127.0.0.1", 0) as server:
        agent.port = next(iter(server.sockets)).getsockname()[1]
        yield agent


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_agent_down_keeps_amd_running_then_ends_failed(rig: Rig) -> None:
    plan, token = rig.plan(agent_url=f"ws://127.0.0.1:{closed_port()}/agent")
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(corpus_audio(HUMAN), hold_s=5.0)
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.end_type == EndType.FAILED
    assert outcome.error is not None
    assert "agent" in outcome.error
    assert outcome.verdict is not None  # AMD ran to its verdict anyway
    assert outcome.verdict.label is Label.HUMAN
    assert rig.outcomes.verdicts[plan.call_id] == outcome.verdict
    assert rig.server.metrics()["agent_failures"] >= 1
    assert stream.close_code == 1000


async def test_agent_dying_mid_call_ends_failed_after_the_verdict(
    rig: Rig, scripted: ScriptedAgent
) -> None:
    async def die(ws: ServerConnection, start: ap.SessionStart) -> None:
        await ws.close(1011, "agent crashed")

    scripted.script = die
    plan, token = rig.plan(agent_url=scripted.url)
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(corpus_audio(HUMAN), hold_s=5.0)
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)
    assert scripted.call_ids == [plan.call_id]
    assert outcome.end_type == EndType.FAILED
    assert outcome.verdict is not None
    assert outcome.verdict.label is Label.HUMAN


async def test_agent_clear_flushes_both_buffers_and_returns_marks(
    rig: Rig, scripted: ScriptedAgent
) -> None:
    async def talk_then_clear(ws: ServerConnection, start: ap.SessionStart) -> None:
        await ws.send(b"\x7f" * 16000)  # two seconds, sent at once
        await ws.send(ap.encode(ap.AgentMark(name="utt-1")), text=True)
        await asyncio.sleep(0.3)
        await ws.send(ap.encode(ap.AgentClear()), text=True)
        await scripted.drain(ws)

    scripted.script = talk_then_clear
    plan, token = rig.plan(agent_url=scripted.url, amd=amd(enabled=False))
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=1.0)
    async with stream:
        await stream.play(silence(1.0))
    await rig.outcomes.wait_outcome(plan.call_id)

    assert stream.clears == 1
    # Paced at real time: about 0.3 s had gone out, not the two seconds queued.
    assert 800 <= len(stream.outbound) <= 8000
    marks = [m for m in scripted.received if isinstance(m, ap.MarkEvent)]
    assert marks == [ap.MarkEvent(name="utt-1", played=False)]


async def test_mark_is_echoed_after_its_audio_played(
    rig: Rig, scripted: ScriptedAgent
) -> None:
    async def say_and_mark(ws: ServerConnection, start: ap.SessionStart) -> None:
        await ws.send(b"\x7f" * 1600)
        await ws.send(ap.encode(ap.AgentMark(name="utt-1")), text=True)
        await scripted.drain(ws)

    scripted.script = say_and_mark
    plan, token = rig.plan(agent_url=scripted.url, amd=amd(enabled=False))
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=1.0)
    async with stream:
        await stream.play(silence(0.8))
    await rig.outcomes.wait_outcome(plan.call_id)
    assert len(stream.outbound) == 1600
    assert [e.detail for e in stream.events("mark_echo")] == ["utt-1"]
    marks = [m for m in scripted.received if isinstance(m, ap.MarkEvent)]
    assert marks == [ap.MarkEvent(name="utt-1", played=True)]


async def test_agent_hangup_with_turns_ends_the_call(
    rig: Rig, scripted: ScriptedAgent
) -> None:
    async def greet_and_leave(ws: ServerConnection, start: ap.SessionStart) -> None:
        await ws.send("{garbage", text=True)
        await ws.send(ap.encode(ap.AgentTurn(speaker="user", text="Hi?")), text=True)
        turn = ap.AgentTurn(speaker="agent", text="Bye.", start_ms=100, end_ms=900)
        await ws.send(ap.encode(turn), text=True)
        await ws.send(ap.encode(ap.AgentHangup(reason="done")), text=True)
        await scripted.drain(ws)

    scripted.script = greet_and_leave
    plan, token = rig.plan(agent_url=scripted.url, amd=amd(enabled=False))
    stream = TwilioStream(rig.server.url("twilio"), token=token, speed=SPEED)
    async with stream:
        await stream.play(silence(10.0), stop=False)
        await stream.wait_closed()
    outcome = await rig.outcomes.wait_outcome(plan.call_id)

    assert outcome.end_type == EndType.AGENT_HANGUP
    assert stream.close_code == 1000
    assert [(t.speaker, t.text) for t in outcome.turns] == [
        ("user", "Hi?"),
        ("agent", "Bye."),
    ]
    assert outcome.turns[1].end_ms == 900
    ends = [m for m in scripted.received if isinstance(m, ap.SessionEnd)]
    assert [e.end_type for e in ends] == [EndType.AGENT_HANGUP]
    session = next(s for s in rig.server.recent if s.call_id == plan.call_id)
    assert session.counters.counts["agent_bad_messages"] == 1


def test_protocol_rejects_unknown_agent_messages() -> None:
    try:
        ap.decode_from_agent('{"type": "dance"}')
    except msgspec.ValidationError:
        return
    raise AssertionError("an unknown message type was accepted")
