"""The media server: carrier media WebSockets on one listener.

`MediaServer` serves Twilio Media Streams on `/media/twilio` and Telnyx
media streaming on `/media/telnyx` (paths configurable), each stream
authenticated by its signed per-call token. Plans come from a
`PlanSource`, outcomes go to a `CallObserver`. `InMemoryPlans` and
`OutcomeLog` are the standalone pair used by the demo, the benchmarks and
the tests. Run alone with `python -m mediaserver.media_server` (uvloop).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections import deque
from http import HTTPStatus

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from mediaserver.agent.client import AgentLinkConfig
from mediaserver.amd.events import Verdict
from mediaserver.media_amd import AmdEngine
from mediaserver.plan import CallObserver, CallOutcome, CallPlan, PlanSource
from mediaserver.session import CallSession
from mediaserver.transports import telnyx, twilio
from mediaserver.transports.counters import PROCESS, LagRecorder
from mediaserver.transports.ws import StreamGate, serve_stream

log = logging.getLogger(__name__)


class MediaServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port, read back from `MediaServer.port`
    secret: str = ""  # shared with the dispatcher (media tokens) and agents
    twilio_path: str = "/media/twilio"
    telnyx_path: str = "/media/telnyx"
    start_timeout_s: float = 5.0
    agent_connect_timeout_s: float = 3.0
    telnyx_reorder_depth: int = 3  # frames held waiting for a late one
    measure_lag: bool = False  # record per-frame lag (benchmarks)
    batch_vad: bool = False  # one VAD inference per tick for all calls


class MediaServer:
    """Owns the listener; each connection is one call's stream."""

    def __init__(
        self,
        settings: MediaServerSettings,
        *,
        plans: PlanSource,
        observer: CallObserver,
        amd: AmdEngine | None = None,
    ) -> None:
        if not settings.secret:
            raise ValueError("the media server needs a shared secret")
        self.settings = settings
        self.lag = LagRecorder() if settings.measure_lag else None
        secret = settings.secret.encode()
        self._gate = StreamGate(
            secret=secret,
            plans=plans,
            observer=observer,
            agent=AgentLinkConfig(
                secret=secret, connect_timeout_s=settings.agent_connect_timeout_s
            ),
            amd=amd,
            start_timeout_s=settings.start_timeout_s,
            lag=self.lag,
        )
        self._server: Server | None = None
        self._amd = amd
        self._amd_task: asyncio.Task[None] | None = None
        self.live = 0
        # The last calls' sessions, for their counters and stream time.
        self.recent: deque[CallSession] = deque(maxlen=256)
        self.port = 0

    @property
    def gate(self) -> StreamGate:
        """What other transports (WebRTC) share: plans, observer, AMD, lag."""
        return self._gate

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            process_request=self._route,
            compression=None,  # carriers do not negotiate it; it would cost CPU
            max_size=2**20,
        )
        if self._amd is not None and self._amd.batched:
            self._amd_task = asyncio.get_running_loop().create_task(
                self._amd.run(), name="amd-batch-tick"
            )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("media server listening on %s:%d", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._amd_task is not None:
            self._amd_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._amd_task
            self._amd_task = None

    async def __aenter__(self) -> MediaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, carrier: str = "twilio") -> str:
        settings = self.settings
        path = settings.twilio_path if carrier == "twilio" else settings.telnyx_path
        return f"ws://{settings.host}:{self.port}{path}"

    def metrics(self) -> dict[str, int]:
        """Process-wide counters plus the streams open right now."""
        return {**PROCESS, "streams_live": self.live}

    def _route(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path in (self.settings.twilio_path, self.settings.telnyx_path):
            return None
        return ws.respond(HTTPStatus.NOT_FOUND, "no media endpoint here\n")

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        path = request.path.split("?", 1)[0] if request else ""
        PROCESS["streams_opened"] += 1
        self.live += 1
        try:
            if path == self.settings.twilio_path:
                session = await serve_stream(ws, twilio.TwilioCodec(), self._gate)
            else:
                header = request.headers.get(telnyx.TOKEN_HEADER) if request else None
                session = await serve_stream(
                    ws,
                    telnyx.TelnyxCodec(),
                    self._gate,
                    header_token=header,
                    reorder_depth=self.settings.telnyx_reorder_depth,
                )
            if session is not None:
                self.recent.append(session)
        except Exception:
            PROCESS["stream_crashes"] += 1
            log.exception("media stream handler failed")
            await ws.close(1011, "internal error")
        finally:
            self.live -= 1


class InMemoryPlans:
    """A `PlanSource` over a dict: the standalone media server's plans."""

    def __init__(self) -> None:
        self._plans: dict[str, CallPlan] = {}

    def add(self, plan: CallPlan) -> None:
        self._plans[plan.call_id] = plan

    async def plan_for(self, call_id: str) -> CallPlan | None:
        return self._plans.get(call_id)


class OutcomeLog:
    """A `CallObserver` that keeps what it hears and lets callers wait for it."""

    def __init__(self) -> None:
        self.answered: dict[str, dt.datetime] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.outcomes: dict[str, CallOutcome] = {}
        self._waiters: dict[str, asyncio.Future[CallOutcome]] = {}

    async def call_answered(self, call_id: str, at: dt.datetime) -> None:
        self.answered[call_id] = at

    async def call_verdict(self, call_id: str, verdict: Verdict) -> None:
        self.verdicts[call_id] = verdict

    async def call_ended(self, outcome: CallOutcome) -> None:
        self.outcomes[outcome.call_id] = outcome
        waiter = self._waiters.pop(outcome.call_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)

    async def wait_outcome(self, call_id: str, within_s: float = 30.0) -> CallOutcome:
        """The call's outcome, once it has ended."""
        if call_id in self.outcomes:
            return self.outcomes[call_id]
        loop = asyncio.get_running_loop()
        waiter = self._waiters.setdefault(call_id, loop.create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), within_s)


async def _serve_forever(settings: MediaServerSettings) -> None:
    server = MediaServer(
        settings,
        plans=InMemoryPlans(),
        observer=OutcomeLog(),
        amd=AmdEngine(batched=settings.batch_vad),
    )
    async with server:
        await asyncio.Future()


def main() -> None:
    from mediaserver.logs import configure

    configure()
    settings = MediaServerSettings(
        host=os.environ.get("CALLWRIGHT_MEDIA_HOST", "127.0.0.1"),
        port=int(os.environ.get("CALLWRIGHT_MEDIA_PORT", "8765")),
        secret=os.environ.get("CALLWRIGHT_MEDIA_SECRET")
        or os.environ.get("CALLWRIGHT_SECRET", ""),
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_forever(settings))
    else:
        uvloop.run(_serve_forever(settings))


if __name__ == "__main__":
    main()
