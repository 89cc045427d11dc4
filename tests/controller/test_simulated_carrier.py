"""The simulated carrier: behaviours, status order, media stream, lookup, hangup."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from mediaserver import tokens
from mediaserver.carriers.simulated import SimulatedCarrier, parse_behavior, read_log
from mediaserver.controller.dialer import CarrierStatus, DialRequest
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.errors import CarrierError, ValidationError
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore
from tests.controller.queue_support import EventLog, campaign, launch, wait_until

SECRET = b"k" * 32


def request(call_id: str = "call-1", media_url: str = "") -> DialRequest:
    return DialRequest(
        call_id=call_id,
        from_number="+12125550100",
        to_number="+12125550123",
        media_url=media_url,
        media_token=tokens.issue(SECRET, call_id),
        ring_timeout_s=1,
    )


def test_behaviour_syntax() -> None:
    parsed = parse_behavior("answer:/tmp/x.wav;ring=2;hold=3")
    assert parsed.kind == "answer"
    assert parsed.recording == Path("/tmp/x.wav")
    assert (parsed.ring_s, parsed.hold_s) == (2.0, 3.0)
    with pytest.raises(ValidationError):
        parse_behavior("explode")
    with pytest.raises(ValidationError):
        parse_behavior("busy;ring=soon")


@pytest.mark.parametrize(
    ("behavior", "statuses"),
    [
        ("busy", ["initiated", "ringing", "busy"]),
        ("decline", ["initiated", "ringing", "declined"]),
        ("no_answer", ["initiated", "ringing", "no_answer"]),
        ("fail", ["initiated", "ringing", "failed"]),
        ("answer;hold=0.5", ["initiated", "ringing", "answered", "completed"]),
    ],
)
async def test_status_order_per_behaviour(
    tmp_path: Path, behavior: str, statuses: list[str]
) -> None:
    sink = EventLog()
    carrier = SimulatedCarrier(
        sink=sink, log_path=tmp_path / "sim.log", speed=50, default_behavior=behavior
    )
    result = await carrier.dial(request())
    await wait_until(
        lambda: sink.events and sink.events[-1].status.value == statuses[-1]
    )
    await carrier.close()

    assert [e.status.value for e in sink.events] == statuses
    assert {e.provider_call_id for e in sink.events} == {result.provider_call_id}
    assert all(e.call_id == "call-1" for e in sink.events)
    logged = read_log(tmp_path / "sim.log")
    assert [r["op"] for r in logged].count("dial") == 1


async def test_dial_error_refuses_the_dial() -> None:
    carrier = SimulatedCarrier(sink=EventLog(), default_behavior="dial_error")
    with pytest.raises(CarrierError) as caught:
        await carrier.dial(request())
    assert caught.value.retryable is False


async def test_hangup_and_lookup(tmp_path: Path) -> None:
    sink = EventLog()
    log_path = tmp_path / "sim.log"
    carrier = SimulatedCarrier(
        sink=sink, log_path=log_path, speed=50, default_behavior="answer;hold=600"
    )
    result = await carrier.dial(request())
    await wait_until(
        lambda: any(e.status is CarrierStatus.ANSWERED for e in sink.events)
    )

    await carrier.hangup(result.provider_call_id)
    await carrier.hangup(result.provider_call_id)  # twice is not an error
    assert sink.events[-1].status is CarrierStatus.COMPLETED
    looked = await carrier.lookup(result.provider_call_id)
    assert looked is not None
    assert looked.status is CarrierStatus.COMPLETED

    # A fresh carrier (after a restart) answers from the durable log.
    restarted = SimulatedCarrier(log_path=log_path)
    again = await restarted.lookup(result.provider_call_id)
    assert again is not None
    assert again.status is CarrierStatus.COMPLETED
    assert await restarted.lookup("SIM-unknown") is None
    await carrier.close()


async def test_a_call_running_at_a_crash_looks_failed_after_restart(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "sim.log"
    carrier = SimulatedCarrier(
        sink=EventLog(), log_path=log_path, speed=50, default_behavior="answer;hold=600"
    )
    result = await carrier.dial(request())
    await carrier.close()  # the process "dies" mid-call

    looked = await SimulatedCarrier(log_path=log_path).lookup(result.provider_call_id)
    assert looked is not None
    assert looked.status is CarrierStatus.FAILED


@pytest_asyncio.fixture
async def media_endpoint() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback WebSocket endpoint that records what the carrier sends."""
    received: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(json.loads(message))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/media/twilio", received


async def test_answer_streams_the_recording_like_twilio(
    tmp_path: Path, media_endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = media_endpoint
    recording = tmp_path / "hello.wav"
    with wave.open(str(recording), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(8000 // 5 * 1, np.int16).tobytes())  # 200 ms

    sink = EventLog()
    carrier = SimulatedCarrier(
        sink=sink,
        speed=20,
        default_behavior=f"answer:{recording};ring=0",
        recordings_dirs=[tmp_path],
    )
    await carrier.dial(request(media_url=url))
    await wait_until(
        lambda: sink.events and sink.events[-1].status is CarrierStatus.COMPLETED
    )
    await carrier.close()

    events = [m["event"] for m in received]
    assert events[0:2] == ["connected", "start"]
    assert events[-1] == "stop"
    assert events.count("media") == 10  # 200 ms in 20 ms frames
    start = received[1]["start"]
    assert tokens.verify(SECRET, start["customParameters"]["token"]) == "call-1"
    assert start["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert [m["media"]["chunk"] for m in received if m["event"] == "media"][:3] == [
        "1",
        "2",
        "3",
    ]


async def test_controller_with_simulated_carrier_ends_every_call(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    carrier = SimulatedCarrier(log_path=tmp_path / "sim.log", speed=50)
    controller = Controller(
        QueueStore(engine),
        StaticCampaigns([campaign(max_concurrent_calls=2)]),
        {"simulated": carrier},
        media_urls={},
        token_secret=SECRET,
        poll_s=0.05,
    )
    carrier.bind(controller, controller)
    behaviours = [
        "busy",
        "decline",
        "no_answer;ring=0",
        "fail",
        "answer;hold=0.2",
        "dial_error",
    ]
    await controller.enqueue(
        [
            launch(f"+1212555{i:04d}", metadata={"sim_behavior": b})
            for i, b in enumerate(behaviours)
        ]
    )

    await controller.start()
    try:
        for _ in range(400):
            counts = await controller.store.count_by_status()
            if (
                sum(
                    counts.get(s.value, 0)
                    for s in (
                        CallStatus.QUEUED,
                        CallStatus.DISPATCHING,
                        CallStatus.INITIATED,
                        CallStatus.RINGING,
                        CallStatus.ANSWERED,
                    )
                )
                == 0
            ):
                break
            await asyncio.sleep(0.02)
    finally:
        await controller.stop()
        await carrier.close()
        await engine.dispose()

    assert counts == {
        "busy": 1,
        "declined": 1,
        "no_answer": 1,
        "failed": 1,
        "completed": 1,
        "initiation_failed": 1,
    }
