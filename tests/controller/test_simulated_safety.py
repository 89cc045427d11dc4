"""The simulated carrier refuses bad behaviours and paths, and never hangs a call.

Each test here failed before its fix: a non-WAV recording left the call
`answered` for good, any path on the host could be opened, and an unknown
behaviour silently answered.
"""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from mediaserver import tokens
from mediaserver.carriers.simulated import (
    SimulatedCarrier,
    resolve_recording,
    validate_sim_behavior,
)
from mediaserver.controller.dialer import CarrierStatus, DialRequest
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import CarrierError, ValidationError
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore
from tests.controller.queue_support import EventLog, campaign, launch, wait_until

SECRET = b"s" * 32


def _request(media_url: str) -> DialRequest:
    return DialRequest(
        call_id="call-1",
        from_number="+12125550100",
        to_number="+12125550123",
        media_url=media_url,
        media_token=tokens.issue(SECRET, "call-1"),
        ring_timeout_s=1,
    )


def _wav(path: Path, seconds: float = 0.1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(int(8000 * seconds), np.int16).tobytes())
    return path


@pytest_asyncio.fixture
async def media_url() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback media endpoint that records the events it is sent."""
    events: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            events.append(json.loads(message)["event"])

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/media/twilio", events


# -- 1. a recording that cannot play ends the call ---------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notwav.wav", b"this is not a wave file at all"),
        ("empty.wav", b""),
        ("torn.wav", b"RIFF\x10\x00\x00\x00WAVEfmt "),
    ],
)
async def test_a_recording_that_cannot_play_fails_the_call(
    tmp_path: Path, media_url: tuple[str, list[str]], name: str, content: bytes
) -> None:
    url, streamed = media_url
    (tmp_path / name).write_bytes(content)
    sink = EventLog()
    carrier = SimulatedCarrier(
        sink=sink,
        speed=50,
        default_behavior=f"answer:{name};ring=0;hold=600",
        recordings_dirs=[tmp_path],
    )
    await carrier.dial(_request(url))
    await wait_until(
        lambda: sink.events and sink.events[-1].status is CarrierStatus.FAILED
    )
    await carrier.close()

    assert [e.status for e in sink.events] == [
        CarrierStatus.INITIATED,
        CarrierStatus.RINGING,
        CarrierStatus.FAILED,
    ]
    assert f"cannot play recording {name}" in sink.events[-1].detail
    assert streamed == []  # nothing was streamed


async def test_a_stereo_recording_fails_with_the_reason(
    tmp_path: Path, media_url: tuple[str, list[str]]
) -> None:
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0" * 3200)
    sink = EventLog()
    carrier = SimulatedCarrier(
        sink=sink,
        speed=50,
        default_behavior="answer:stereo.wav;ring=0",
        recordings_dirs=[tmp_path],
    )
    await carrier.dial(_request(media_url[0]))
    await wait_until(
        lambda: sink.events and sink.events[-1].status is CarrierStatus.FAILED
    )
    await carrier.close()
    assert "need mono 16-bit PCM" in sink.events[-1].detail


async def test_controller_marks_the_call_failed_with_the_error(
    tmp_path: Path, media_url: tuple[str, list[str]]
) -> None:
    (tmp_path / "notwav.wav").write_bytes(b"garbage" * 10)
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    carrier = SimulatedCarrier(speed=50, recordings_dirs=[tmp_path])
    controller = Controller(
        QueueStore(engine),
        StaticCampaigns([campaign(max_call_s=15)]),
        {"simulated": carrier},
        media_urls={"simulated": media_url[0]},
        token_secret=SECRET,
        poll_s=0.05,
    )
    carrier.bind(controller, controller)
    behaviours = ["answer:notwav.wav;ring=0", "explode", "answer:/etc/passwd"]
    attempts = await controller.enqueue(
        [
            launch(f"+1212555{i:04d}", metadata={"sim_behavior": b})
            for i, b in enumerate(behaviours)
        ]
    )
    await controller.start()
    try:
        for _ in range(300):
            ended = [await controller.store.get(a.id) for a in attempts]
            if all(a is not None and a.terminal for a in ended):
                break
            await asyncio.sleep(0.02)
        histories = [await controller.store.history(a.id) for a in attempts]
    finally:
        await controller.stop()
        await carrier.close()
        await engine.dispose()

    statuses = [a.status if a else None for a in ended]
    assert statuses == [
        CallStatus.FAILED,
        CallStatus.INITIATION_FAILED,
        CallStatus.INITIATION_FAILED,
    ]
    assert any("cannot play recording notwav.wav" in h.detail for h in histories[0])
    assert ended[1] is not None
    assert ended[2] is not None
    assert "unknown behaviour 'explode'" in (ended[1].initiation_error or "")
    assert "outside" in (ended[2].initiation_error or "")


# -- 2. recordings come from the configured folders only ---------------------


def test_recordings_default_to_the_corpus_folder_only() -> None:
    assert SimulatedCarrier().recordings_dirs == [default_corpus_dir()]


def test_paths_resolve_inside_the_folders_only(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "human").mkdir(parents=True)
    first.mkdir()
    hello = _wav(second / "human" / "hello.wav")
    folders = [first, second]

    assert resolve_recording(Path("human/hello.wav"), folders) == hello.resolve()
    assert resolve_recording(hello, folders) == hello.resolve()
    refused = [
        Path("/etc/passwd"),
        Path("../b/human/hello.wav"),
        Path("human/../human/hello.wav"),
        Path("missing.wav"),
        tmp_path / "outside.wav",
    ]
    for path in refused:
        with pytest.raises(ValidationError):
            resolve_recording(path, folders)

    # A link inside a folder pointing out of it is refused too.
    secret = _wav(tmp_path / "secret.wav")
    (first / "link.wav").symlink_to(secret)
    with pytest.raises(ValidationError):
        resolve_recording(Path("link.wav"), folders)


async def test_dial_refuses_a_recording_outside_the_folders(tmp_path: Path) -> None:
    sink = EventLog()
    carrier = SimulatedCarrier(
        sink=sink, default_behavior="answer:/etc/passwd", recordings_dirs=[tmp_path]
    )
    with pytest.raises(CarrierError) as caught:
        await carrier.dial(_request("ws://127.0.0.1:1/unused"))
    assert caught.value.retryable is False
    assert "outside the simulated carrier's folders" in str(caught.value)
    assert sink.events == []  # no call was started


# -- 3. behaviours parse strictly --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "answer",
        "answer:human/hello.wav",
        "answer:x.wav;ring=0;hold=2.5",
        "busy",
        "decline;ring=1",
        "no_answer;ring=0",
        "fail",
        "dial_error",
        " busy ; ring = 1 ",
    ],
)
def test_valid_behaviours(text: str) -> None:
    assert validate_sim_behavior(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("explode", "unknown behaviour 'explode'"),
        ("", "unknown behaviour ''"),
        ("Answer", "unknown behaviour 'Answer'"),
        ("busy:x.wav", "busy takes no recording"),
        ("answer:", "needs a recording path"),
        ("answer;hold", "hold needs seconds"),
        ("answer;hold=", "hold needs seconds"),
        ("busy;ring=soon", "ring needs seconds"),
        ("busy;ring=-1", "0 or more"),
        ("busy;ring=nan", "0 or more"),
        ("busy;ring=inf", "0 or more"),
        ("busy;ring=1;ring=2", "ring given twice"),
        ("busy;volume=3", "unknown option 'volume'"),
        ("busy;", "unknown option ''"),
    ],
)
def test_invalid_behaviours_name_the_reason(text: str, reason: str) -> None:
    found = validate_sim_behavior(text)
    assert found is not None
    assert reason in found


def test_validation_checks_the_folders_when_given(tmp_path: Path) -> None:
    _wav(tmp_path / "hello.wav")
    assert validate_sim_behavior("answer:hello.wav", [tmp_path]) is None
    outside = validate_sim_behavior("answer:/etc/passwd", [tmp_path])
    assert outside is not None
    assert "outside" in outside
    missing = validate_sim_behavior("answer:nope.wav", [tmp_path])
    assert missing is not None
    assert "no recording" in missing


def test_a_bad_default_behaviour_is_refused_at_construction() -> None:
    with pytest.raises(ValidationError):
        SimulatedCarrier(default_behavior="explode")
