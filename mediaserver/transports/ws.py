"""asyncio glue between a carrier's media WebSocket and a `CallSession`.

`serve_stream` runs one connection: it waits for `start` (bounded by
`start_timeout_s`), verifies the per-call token (purpose "media") and looks
up the call's plan, then pumps frames into the session until the carrier
stops, the socket drops or the session ends the call. Input it cannot use
is logged (rate-limited), counted and skipped; only a missing or bad
`start` closes the stream, with code 1008 and a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from mediaserver import tokens
from mediaserver.agent.client import AgentLinkConfig
from mediaserver.errors import TokenError
from mediaserver.logs import RateLimitedLog
from mediaserver.media_amd import AmdEngine
from mediaserver.plan import CallObserver, PlanSource
from mediaserver.session import CallSession
from mediaserver.transports.common import (
    CarrierReportedError,
    Connected,
    Dtmf,
    Inbound,
    Issue,
    IssueKind,
    MarkEcho,
    MediaBody,
    Started,
    Stopped,
)
from mediaserver.transports.counters import PROCESS, CallCounters, LagRecorder

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)

POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003


class Codec(Protocol):
    carrier: str

    def decode(self, data: str | bytes) -> Inbound | Issue: ...

    def encode_media(self, payload: bytes) -> bytes: ...

    def encode_mark(self, name: str) -> bytes: ...

    def encode_clear(self) -> bytes: ...


class StreamGate(msgspec.Struct, frozen=True, kw_only=True):
    """What every stream connection needs from the server."""

    secret: bytes
    plans: PlanSource
    observer: CallObserver
    agent: AgentLinkConfig
    amd: AmdEngine | None
    start_timeout_s: float = 5.0
    lag: LagRecorder | None = None


class WsCarrier:
    """The carrier's socket as the session sees it (`CarrierSender`)."""

    def __init__(self, ws: ServerConnection, codec: Codec) -> None:
        self.carrier = codec.carrier
        self._ws = ws
        self.encode_media = codec.encode_media
        self.encode_mark = codec.encode_mark
        self.encode_clear = codec.encode_clear

    async def send(self, message: bytes) -> None:
        # A closing socket is noticed by the pump, which ends the call; a send
        # on it would only wait for the close handshake.
        if self._ws.state is not State.OPEN:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(message, text=True)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)


def report_issue(issue: Issue, counters: CallCounters, carrier: str) -> None:
    counters.bump(issue.kind.value)
    _warn.warning(
        f"{carrier}:{issue.kind}",
        "%s stream: skipped a message (%s: %s)",
        carrier,
        issue.kind.value,
        issue.detail[:120],
    )


async def serve_stream(
    ws: ServerConnection,
    codec: Codec,
    gate: StreamGate,
    *,
    header_token: str | None = None,
    reorder_depth: int = 0,
) -> CallSession | None:
    """Run one carrier media connection to its end; returns its session."""
    early = CallCounters()
    started, connected_token = await _await_start(ws, codec, gate, early)
    if started is None:
        return None
    token = header_token or connected_token or started.token
    try:
        call_id = tokens.verify(gate.secret, token, purpose="media")
    except TokenError as exc:
        PROCESS["tokens_refused"] += 1
        log.warning("%s stream refused: %s", codec.carrier, exc)
        await ws.close(POLICY_VIOLATION, str(exc))
        return None
    plan = await gate.plans.plan_for(call_id)
    if plan is None:
        PROCESS["unknown_calls"] += 1
        log.warning("%s stream refused: no plan for call %s", codec.carrier, call_id)
        await ws.close(POLICY_VIOLATION, "unknown call")
        return None

    session = CallSession(
        plan=plan,
        started=started,
        carrier=WsCarrier(ws, codec),
        observer=gate.observer,
        agent_config=gate.agent,
        amd=gate.amd,
        reorder_depth=reorder_depth,
        lag=gate.lag,
    )
    for key, n in early.counts.items():
        session.counters.counts[key] += n
    await session.begin()
    reason = "carrier closed the stream"
    try:
        reason = await _pump(ws, codec, session)
    except ConnectionClosed as exc:
        reason = f"carrier connection lost ({exc.rcvd.code if exc.rcvd else 1006})"
        session.counters.bump("abrupt_disconnects")
    finally:
        if not session.ended:
            await session.on_carrier_gone(reason)
    return session


async def _await_start(
    ws: ServerConnection, codec: Codec, gate: StreamGate, counters: CallCounters
) -> tuple[Started | None, str | None]:
    connected_token: str | None = None
    try:
        async with asyncio.timeout(gate.start_timeout_s):
            async for message in ws:
                event = codec.decode(message)
                if isinstance(event, Started):
                    return event, connected_token
                if isinstance(event, Connected):
                    connected_token = event.token
                elif isinstance(event, MediaBody):
                    counters.bump("media_before_start")
                elif isinstance(event, Issue):
                    report_issue(event, counters, codec.carrier)
                    if event.kind is IssueKind.UNSUPPORTED_ENCODING:
                        await ws.close(UNSUPPORTED_DATA, "unsupported media format")
                        return None, None
                elif isinstance(event, Stopped):
                    await ws.close(1000, "stopped before start")
                    return None, None
    except TimeoutError:
        PROCESS["start_timeouts"] += 1
        wait = gate.start_timeout_s
        log.warning("%s stream sent no start within %.1f s", codec.carrier, wait)
        await ws.close(POLICY_VIOLATION, f"no start within {wait:g} s")
    except ConnectionClosed:
        PROCESS["closed_before_start"] += 1
    return None, None


async def _pump(ws: ServerConnection, codec: Codec, session: CallSession) -> str:
    decode = codec.decode
    counters = session.counters
    async for message in ws:
        try:
            if await _dispatch(decode(message), session, counters, codec.carrier):
                return "carrier sent stop"
        except Exception as exc:
            # One frame our code could not handle must not end the call, and
            # a peer sending many must not flood the log.
            counters.bump("frame_errors")
            _warn.warning(
                f"{codec.carrier}:frame_error",
                "media frame handling failed (%s: %s); the call goes on",
                type(exc).__name__,
                str(exc)[:120],
            )
        if session.ended:
            return "session ended"
    return "carrier closed the stream"


async def _dispatch(
    event: Inbound | Issue, session: CallSession, counters: CallCounters, carrier: str
) -> bool:
    """Hand one message to the session; True when the carrier said stop."""
    # Media first and by exact type: it is 50 messages a second.
    if type(event) is MediaBody:
        if not event.payload:
            counters.bump(IssueKind.EMPTY_PAYLOAD.value)
        elif event.track == "outbound":
            counters.bump("outbound_track_frames")
        else:
            await session.on_media(event.chunk, event.payload)
    elif isinstance(event, MarkEcho):
        await session.on_mark(event.name)
    elif isinstance(event, Dtmf):
        await session.on_dtmf(event.digit)
    elif isinstance(event, Stopped):
        return True
    elif isinstance(event, Issue):
        report_issue(event, counters, carrier)
    elif isinstance(event, CarrierReportedError):
        counters.bump("carrier_errors")
        _warn.warning(
            f"{carrier}:error",
            "%s reported a stream error %s (%s)",
            carrier,
            event.code,
            event.title,
        )
    elif isinstance(event, Started):
        counters.bump("repeated_start")
    return False
