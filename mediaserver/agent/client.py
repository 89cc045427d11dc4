"""The media server's side of the agent link: one WebSocket per call.

`AgentLink.run` is the session's agent task: it connects to the plan's
`agent_url` with a per-call token (purpose "agent") in an
`Authorization: Bearer` header, sends `start` (which repeats the token),
then reads the agent's audio and messages until either side ends. Sending
never waits on a slow agent: past `write_limit_bytes` of unsent data,
audio frames are dropped and counted instead of stalling the carrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Protocol

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from mediaserver import tokens
from mediaserver.agent import protocol as ap
from mediaserver.logs import RateLimitedLog
from mediaserver.transports.counters import CallCounters

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)


class AgentLinkConfig(msgspec.Struct, frozen=True, kw_only=True):
    secret: bytes
    connect_timeout_s: float = 3.0
    buffer_frames: int = 100  # audio kept while connecting (2 s)
    write_limit_bytes: int = 64 * 1024
    token_ttl_s: int = 3600


class AgentHandler(Protocol):
    """The call session, as the link reports to it."""

    call_id: str
    counters: CallCounters

    def agent_audio(self, data: bytes) -> None: ...

    async def agent_message(self, message: ap.FromAgent) -> None: ...

    async def agent_failed(self, reason: str) -> None: ...


class AgentLink:
    """One call's connection to its agent runtime."""

    def __init__(
        self,
        url: str,
        start: ap.SessionStart,
        *,
        config: AgentLinkConfig,
        session: AgentHandler,
    ) -> None:
        self._url = url
        self._start = start
        self._config = config
        self._session = session
        self._ws: ClientConnection | None = None
        # Audio (bytes) and events (text) sent while the link was opening.
        self._pending: deque[tuple[bytes, bool]] = deque()
        self._pending_audio = 0
        self._closing = False
        self._failed = False

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._closing

    async def run(self) -> None:
        """Connect, then read the agent until the link ends (the owned task)."""
        ws = await self._connect()
        if ws is None:
            return
        if self._closing:
            await ws.close(1000, "session ended")
            return
        try:
            await ws.send(ap.encode(self._start), text=True)
            while self._pending:
                data, text = self._pending.popleft()
                await ws.send(data, text=text)
            self._ws = ws
            async for message in ws:
                await self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
        self._failed = True
        if not self._closing:
            code = ws.close_code
            await self._session.agent_failed(f"agent closed the link (code {code})")

    async def _connect(self) -> ClientConnection | None:
        cfg = self._config
        token = tokens.issue(
            cfg.secret, self._session.call_id, ttl_s=cfg.token_ttl_s, purpose="agent"
        )
        self._start = msgspec.structs.replace(self._start, token=token)
        try:
            return await connect(
                self._url,
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
                open_timeout=cfg.connect_timeout_s,
                max_queue=64,
            )
        except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as exc:
            self._failed = True
            self._pending.clear()
            await self._session.agent_failed(f"cannot reach the agent: {exc}")
            return None

    async def _receive(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._session.agent_audio(message)
            return
        try:
            decoded = ap.decode_from_agent(message)
        except msgspec.DecodeError as exc:
            self._session.counters.bump("agent_bad_messages")
            _warn.warning(
                "agent:bad", "agent sent a message outside the protocol: %s", exc
            )
            return
        await self._session.agent_message(decoded)

    async def send_audio(self, frame: bytes) -> None:
        """Forward one inbound frame; buffered while connecting, dropped if slow."""
        ws = self._ws
        if ws is None:
            if self._closing or not self._url:
                return
            if self._pending_audio >= self._config.buffer_frames:
                self._session.counters.bump("agent_audio_dropped")
                return
            self._pending_audio += 1
            self._pending.append((frame, False))
            return
        if ws.state is not State.OPEN:
            return  # closing: a send would wait for the close; run() reports it
        if ws.transport.get_write_buffer_size() > self._config.write_limit_bytes:
            self._session.counters.bump("agent_audio_dropped")
            return
        # A closed link is noticed by run(), which reports it.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)

    async def send(self, message: ap.ToAgent) -> None:
        """Send one event; held while connecting, lost (and counted) when down."""
        ws = self._ws
        if not self._url:
            return  # an AMD-only call has no agent to tell
        if self._closing or self._failed:
            self._session.counters.bump("agent_events_lost")
            return
        if ws is None:
            self._pending.append((ap.encode(message), True))
            return
        if ws.state is not State.OPEN:
            self._session.counters.bump("agent_events_lost")
            return
        try:
            await ws.send(ap.encode(message), text=True)
        except ConnectionClosed:
            self._session.counters.bump("agent_events_lost")

    async def close(self, end: ap.SessionEnd) -> None:
        """Say why the session ended, then close the link."""
        ws = self._ws
        self._closing = True
        if ws is None:
            return
        try:
            await ws.send(ap.encode(end), text=True)
            await asyncio.wait_for(ws.close(1000, end.end_type), 2.0)
        except (ConnectionClosed, TimeoutError):
            pass
