"""A loopback carrier media stream: the part Twilio and Telnyx share.

`CarrierStream` connects to a media endpoint the way the carrier does,
plays an int16 8 kHz array as 20 ms G.711 `media` messages (in real time,
or `speed` times faster), and models the carrier's playout of what the
server sends back: outbound audio queues up and drains at 8000 bytes/s
(times `speed`), a `mark` is echoed when playout reaches it, and `clear`
drops the queue and echoes every pending mark at once. Everything that
happens is kept in `timeline`, stamped with stream time (inbound ms sent
so far), so tests can ask when the server cleared or spoke.
The wire format lives in the subclasses (twilio_stream.py, telnyx_stream.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import deque
from collections.abc import Mapping

import msgspec
import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FRAME = 160  # samples (= bytes of G.711) per 20 ms


class StreamEvent(msgspec.Struct, frozen=True):
    at_ms: int  # inbound stream time when it happened
    kind: str  # "media", "mark", "clear", "mark_echo", "closed"
    detail: str = ""


class CarrierStream:
    """Base class; use `TwilioStream` or `TelnyxStream`."""

    def __init__(
        self,
        url: str,
        *,
        speed: float = 1.0,
        headers: Mapping[str, str] | None = None,
        drop_chunks: frozenset[int] = frozenset(),
    ) -> None:
        self.url = url
        self.speed = speed
        self.headers = dict(headers or {})
        self.drop_chunks = drop_chunks
        self.timeline: list[StreamEvent] = []
        self.outbound = bytearray()  # every audio byte the server sent
        self.played = bytearray()  # what playout actually reached
        self.clears = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.frames_sent = 0
        self.play_started: float | None = None  # time.monotonic() of frame 1
        self._seq = 0
        self._chunk = 0
        self._ws: ClientConnection | None = None
        self._queue = bytearray()
        self._marks: deque[tuple[int, str]] = deque()  # (queue offset, name)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._quiet = True

    # Wire format, per carrier.

    def encode_audio(self, pcm: NDArray[np.int16]) -> bytes:
        raise NotImplementedError

    def connected_message(self) -> dict[str, object]:
        raise NotImplementedError

    def start_message(self) -> dict[str, object]:
        raise NotImplementedError

    def media_message(self, payload: bytes, chunk: int, ts: int) -> dict[str, object]:
        raise NotImplementedError

    def mark_message(self, name: str) -> dict[str, object]:
        raise NotImplementedError

    def dtmf_message(self, digit: str) -> dict[str, object]:
        raise NotImplementedError

    def stop_message(self) -> dict[str, object]:
        raise NotImplementedError

    # Lifecycle.

    @property
    def stream_ms(self) -> int:
        return self.frames_sent * 20

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def next_sequence(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def open(self, *, send_start: bool = True) -> None:
        """Connect, send `connected` and (unless told not to) `start`."""
        self._ws = await connect(
            self.url, additional_headers=self.headers, compression=None
        )
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._receive(), name="stream-receive"))
        self._tasks.append(loop.create_task(self._playout(), name="stream-playout"))
        await self.send_json(self.connected_message())
        if send_start:
            await self.send_json(self.start_message())

    async def __aenter__(self) -> CarrierStream:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send_json(self, message: Mapping[str, object]) -> None:
        await self.send_raw(msgspec.json.encode(message).decode())

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything, well-formed or not (robustness tests use this)."""
        assert self._ws is not None, "open() first"
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(data)

    async def play(
        self, pcm: NDArray[np.int16], *, stop: bool = True, hold_s: float = 0.0
    ) -> None:
        """Send `pcm` as 20 ms frames at `speed`, then `hold_s` of silence
        (a voicemail that keeps recording), then `stop` unless told not to.

        Returns early when the server closes the stream (its hang-up).
        """
        if hold_s > 0:
            pcm = np.concatenate([pcm, np.zeros(int(hold_s * 8000), np.int16)])
        payload = self.encode_audio(pcm)
        start = time.monotonic() - self.frames_sent * 0.02 / self.speed
        if self.play_started is None:
            self.play_started = start
        for offset in range(0, len(payload) - FRAME + 1, FRAME):
            if self.closed:
                return
            due = start + self.frames_sent * 0.02 / self.speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send_frame(payload[offset : offset + FRAME])
        if stop and not self.closed:
            await self.send_json(self.stop_message())

    async def send_frame(self, payload: bytes) -> None:
        """One media message; chunks in `drop_chunks` are counted but not sent."""
        self._chunk += 1
        self.frames_sent += 1
        if self._chunk in self.drop_chunks:
            return
        ts = (self._chunk - 1) * 20
        await self.send_json(self.media_message(payload, self._chunk, ts))

    async def send_dtmf(self, digit: str) -> None:
        await self.send_json(self.dtmf_message(digit))

    async def wait_closed(self, within_s: float = 10.0) -> None:
        """Until the server closes the stream (its hang-up)."""
        await asyncio.wait_for(self._closed.wait(), within_s)

    async def abort(self) -> None:
        """Drop the TCP connection with no close frame (a network failure)."""
        if self._ws is not None:
            self._ws.transport.abort()
        await self.wait_closed()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def events(self, kind: str) -> list[StreamEvent]:
        return [e for e in self.timeline if e.kind == kind]

    # The carrier's side of playback.

    def _note(self, kind: str, detail: str = "") -> None:
        self.timeline.append(StreamEvent(self.stream_ms, kind, detail))

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                await self._on_message(msgspec.json.decode(message))
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
            self._note("closed", f"{self.close_code} {self.close_reason}")
            self._closed.set()

    async def _on_message(self, msg: dict[str, object]) -> None:
        event = msg.get("event")
        if event == "media":
            media = msg["media"]
            assert isinstance(media, dict)
            audio = base64.b64decode(str(media["payload"]))
            if self._quiet:
                # The first audio of a talk spurt: after the start or a clear.
                self._note("media", "first" if not self.outbound else "resumed")
                self._quiet = False
            self.outbound += audio
            self._queue += audio
        elif event == "mark":
            mark = msg["mark"]
            assert isinstance(mark, dict)
            self._note("mark", str(mark["name"]))
            if self._queue:
                self._marks.append((len(self._queue), str(mark["name"])))
            else:
                await self._echo(str(mark["name"]))
        elif event == "clear":
            self.clears += 1
            self._quiet = True
            self._note("clear")
            self._queue.clear()
            pending, self._marks = list(self._marks), deque()
            for _, name in pending:
                await self._echo(name)

    async def _playout(self) -> None:
        rate = 8000 * self.speed
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            budget, last = int((now - last) * rate), now
            while budget > 0 and (self._queue or self._marks):
                if self._marks and self._marks[0][0] <= 0:
                    await self._echo(self._marks.popleft()[1])
                    continue
                limit = self._marks[0][0] if self._marks else len(self._queue)
                take = min(budget, limit, len(self._queue))
                self.played += self._queue[:take]
                del self._queue[:take]
                budget -= take
                self._marks = deque((o - take, n) for o, n in self._marks)
            while self._marks and self._marks[0][0] <= 0:
                await self._echo(self._marks.popleft()[1])

    async def _echo(self, name: str) -> None:
        self._note("mark_echo", name)
        if not self.closed:
            await self.send_json(self.mark_message(name))
