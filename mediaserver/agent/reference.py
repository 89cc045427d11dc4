"""The reference agent runtime: a small server that speaks docs/agent-protocol.md.

There is no TTS here: "saying" a script sends a synthetic voiced signal
(a 150 Hz harmonic buzz, about 60 ms per character, capped) in the call's
codec, followed by a mark and a turn report with the script text. It obeys
`stop_speaking` (stops, reports the turn as cut), plays its message and
hangs up on `final_action` leave_message, and closes on end_call. Every
session is kept in `sessions` so tests and the demo can see what it heard.
Run alone: `callwright agent`, or `python -m mediaserver.agent.reference`
(CALLWRIGHT_MEDIA_SECRET, or CALLWRIGHT_SECRET).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time

import msgspec
import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from mediaserver import tokens
from mediaserver.agent import protocol as ap
from mediaserver.codecs.g711 import pcm_to_alaw, pcm_to_ulaw
from mediaserver.errors import TokenError

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\{?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}?\}")

MS_PER_CHAR = 60
MAX_SPEECH_MS = 4000


def voiced_signal(duration_ms: int, *, f0: float = 150.0) -> NDArray[np.int16]:
    """A speech-like buzz: harmonics of f0 under a syllable-rate envelope."""
    t = np.arange(duration_ms * 8) / 8000.0
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    return (wave * envelope * 4000).astype(np.int16)


class AgentRecord(msgspec.Struct, kw_only=True):
    """What one session of the reference agent saw and did."""

    start: ap.SessionStart
    events: list[str] = []  # message types received, in order
    messages: list[ap.ToAgent] = []
    received_at: list[float] = []  # time.monotonic() of each message
    audio_in_bytes: int = 0
    spoken: list[str] = []  # scripts it began to say
    interrupted: bool = False
    left_message: bool = False
    hung_up: bool = False


class ReferenceAgent:
    """An agent runtime on loopback; `url` goes into `CallPlan.agent_url`."""

    def __init__(
        self,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_speech_ms: int = MAX_SPEECH_MS,
    ) -> None:
        self._secret = secret.encode()
        self._host = host
        self._port = port
        self._max_ms = max_speech_ms
        self._server: Server | None = None
        self.sessions: dict[str, AgentRecord] = {}
        self.refused = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}/agent"

    async def start(self) -> None:
        self._server = await serve(
            self._handle, self._host, self._port, compression=None
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ReferenceAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, ws: ServerConnection) -> None:
        header = ws.request.headers.get("Authorization", "") if ws.request else ""
        try:
            call_id = tokens.verify(
                self._secret, header.removeprefix("Bearer ").strip(), purpose="agent"
            )
            first = ap.decode_to_agent(await asyncio.wait_for(ws.recv(), 5.0))
        except (TokenError, msgspec.DecodeError, TimeoutError) as exc:
            self.refused += 1
            await ws.close(1008, f"refused: {exc}"[:120])
            return
        except ConnectionClosed:
            return
        if not isinstance(first, ap.SessionStart) or first.call_id != call_id:
            self.refused += 1
            await ws.close(1008, "first message must be start for this call")
            return
        record = AgentRecord(start=first)
        self.sessions[call_id] = record
        await _Conversation(ws, record, self._max_ms).run()


class _Conversation:
    """One call, from the agent's side."""

    def __init__(self, ws: ServerConnection, record: AgentRecord, max_ms: int) -> None:
        self.ws = ws
        self.record = record
        self.max_ms = max_ms
        law = record.start.media_format.encoding
        self.encode = pcm_to_alaw if law == "pcma" else pcm_to_ulaw
        self.speaking: asyncio.Task[None] | None = None

    async def run(self) -> None:
        start = self.record.start
        try:
            if start.opening_script:
                self._say(self._render(start.opening_script), "opening")
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.record.audio_in_bytes += len(message)
                    continue
                if not await self._on_event(ap.decode_to_agent(message)):
                    break
        except ConnectionClosed:
            pass
        finally:
            await self._stop_speaking()

    def _render(self, script: str) -> str:
        """Fill `{name}` placeholders from the call's variables; keep unknown ones."""
        values = self.record.start.variables
        return _PLACEHOLDER.sub(
            lambda m: str(values.get(m.group(1), m.group(0))), script
        )

    def _say(self, text: str, mark: str) -> None:
        self.record.spoken.append(text)
        duration = min(max(len(text) * MS_PER_CHAR, 400), self.max_ms)
        self.speaking = asyncio.get_running_loop().create_task(
            self._speak(text, duration, mark), name=f"ref-agent-say-{mark}"
        )

    async def _speak(self, text: str, duration_ms: int, mark: str) -> None:
        audio = self.encode(voiced_signal(duration_ms))
        # Any size is allowed; the media server re-frames and paces it.
        for offset in range(0, len(audio), 800):
            await self.ws.send(audio[offset : offset + 800])
        await self.ws.send(ap.encode(ap.AgentMark(name=mark)), text=True)
        turn = ap.AgentTurn(speaker="agent", text=text, end_ms=None)
        await self.ws.send(ap.encode(turn), text=True)

    async def _stop_speaking(self) -> None:
        task, self.speaking = self.speaking, None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task

    async def _on_event(self, event: ap.ToAgent) -> bool:
        """Handle one event; False when the conversation is over."""
        tag = type(event).__struct_config__.tag
        self.record.events.append(str(tag) if tag is not None else "?")
        self.record.messages.append(event)
        self.record.received_at.append(time.monotonic())
        if isinstance(event, ap.StopSpeakingEvent):
            self.record.interrupted = True
            await self._stop_speaking()
        elif isinstance(event, ap.FinalActionEvent):
            await self._stop_speaking()
            if event.action == "end_call":
                return False
            self.record.left_message = True
            text = self._render(event.script or "Please call us back.")
            self._say(text, "message")
            assert self.speaking is not None
            await self.speaking
            self.record.hung_up = True
            hangup = ap.AgentHangup(reason="message left")
            await self.ws.send(ap.encode(hangup), text=True)
        elif isinstance(event, ap.SessionEnd):
            return False
        return True


async def _main() -> None:
    agent = ReferenceAgent(
        os.environ.get("CALLWRIGHT_MEDIA_SECRET")
        or os.environ.get("CALLWRIGHT_SECRET", ""),
        port=int(os.environ.get("CALLWRIGHT_AGENT_PORT", "8766")),
    )
    async with agent:
        log.info("reference agent on %s", agent.url)
        await asyncio.Future()


if __name__ == "__main__":
    from mediaserver.logs import configure

    configure()
    asyncio.run(_main())
