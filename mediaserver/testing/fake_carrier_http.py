"""The HTTP plumbing the loopback carrier fakes share.

A fake is a plain async handler (`HttpRequest` -> `HttpResponse`) served by
uvicorn on 127.0.0.1 at an ephemeral port, plus a callback sender that
refuses any address that is not loopback: a fake must never reach out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np
import uvicorn
from numpy.typing import NDArray
from websockets.exceptions import InvalidHandshake

from mediaserver.testing.carrier_stream import CarrierStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


def asgi_app(handler: Handler) -> Any:
    """Wrap a plain handler as an ASGI application."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        request = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=b"".join(chunks),
        )
        try:
            response = await handler(request)
        except Exception:
            log.exception("fake carrier handler failed on %s", request.path)
            response = HttpResponse(500, b'{"message": "fake failed"}')

        headers = [(b"content-type", response.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in response.headers.items()]
        start = {"type": "http.response.start", "status": response.status}
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the test or demo owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackServer:
    """Serves an ASGI app on 127.0.0.1 at an ephemeral port until closed.

    `bind()` reserves the port first, for apps that must know their own URL.
    """

    def __init__(self, app: Any, name: str) -> None:
        self.app = app
        self._name = name
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bind(self) -> str:
        if self._sock is None:
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets,
            # and without it every response waits out a delayed ACK (~40 ms).
            self._sock = socket.socket(
                socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
            )
            self._sock.bind(("127.0.0.1", 0))
            self.port = self._sock.getsockname()[1]
        return self.base_url

    async def start(self) -> str:
        self.bind()
        assert self._sock is not None
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._sock]), name=f"{self._name}-http"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self.base_url

    async def close(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def require_loopback(url: str) -> None:
    """Refuse to contact anything but this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"fake carriers only call loopback addresses, not {host!r}")


class CallbackSender:
    """POSTs callbacks to loopback URLs and records each answer's status."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)
        self.statuses: list[int] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        require_loopback(url)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("callback to %s failed: %s", url, exc)
            self.statuses.append(0)
            return 0
        self.statuses.append(response.status_code)
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()


async def media_phase(
    player: Coroutine[Any, Any, None],
    *,
    played: asyncio.Event,
    ended: asyncio.Event,
    hangup: asyncio.Event,
    hold_s: float,
    name: str,
) -> str:
    """Run one answered call's media leg; say who ended it.

    The callee plays its recording (setting `played`), then holds the line
    for `hold_s` unless the caller hangs up or our server closes the stream
    first. Answers "caller" (REST hang-up), "server" (stream closed) or
    "callee" (hold ran out). `ended` tells the player to stop.
    """
    player_task = asyncio.create_task(player, name=f"{name}-media")
    hangup_task = asyncio.create_task(hangup.wait(), name=f"{name}-hangup")
    played_task = asyncio.create_task(played.wait(), name=f"{name}-played")
    waiting = {player_task, hangup_task}
    try:
        await asyncio.wait(waiting | {played_task}, return_when=asyncio.FIRST_COMPLETED)
        if played_task.done() and not any(t.done() for t in waiting):
            await asyncio.wait(
                waiting, timeout=hold_s, return_when=asyncio.FIRST_COMPLETED
            )
        if hangup.is_set():
            who = "caller"
        elif player_task.done():
            who = "server"
        else:
            who = "callee"
        ended.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(player_task), 5.0)
        if player_task.done() and not player_task.cancelled():
            error = player_task.exception()
            if error is not None:
                log.warning("%s media player failed: %r", name, error)
        return who
    finally:
        for task in (player_task, hangup_task, played_task):
            task.cancel()
        await asyncio.gather(
            player_task, hangup_task, played_task, return_exceptions=True
        )


async def until_either(ended: asyncio.Event, stream: CarrierStream) -> None:
    """Wait until the call ends or our server closes the media stream."""
    ended_task = asyncio.create_task(ended.wait(), name="call-ended-wait")
    closed_task = asyncio.create_task(stream.wait_closed(86_400), name="closed-wait")
    try:
        await asyncio.wait(
            {ended_task, closed_task}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (ended_task, closed_task):
            task.cancel()
        await asyncio.gather(ended_task, closed_task, return_exceptions=True)


class PlacedCall(Protocol):
    ended: asyncio.Event  # the fake sent the call's last callback
    hangup: asyncio.Event  # our side asked the carrier to hang up


CallT = TypeVar("CallT", bound=PlacedCall)


class FakeCarrier(Generic[CallT]):
    """What both carrier fakes hold: REST server, callback sender, call tasks."""

    def __init__(self, handler: Handler, name: str) -> None:
        self._server = LoopbackServer(asgi_app(handler), name)
        self._sender = CallbackSender()
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: dict[str, CallT] = {}
        self.requests: list[HttpRequest] = []

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.close()
        await self._sender.close()

    async def wait_ended(self) -> None:
        """Wait until every call placed so far has sent its final callback."""
        for call in list(self.calls.values()):
            await call.ended.wait()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hung_up_within(self, call: CallT, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await call.hangup.wait()
        except TimeoutError:
            return False
        return True


async def play_and_hold(
    stream: CarrierStream,
    pcm: NDArray[np.int16],
    *,
    played: asyncio.Event,
    ended: asyncio.Event,
    carrier: str,
) -> None:
    """Open `stream`, play `pcm`, hold until the call ends, then `stop`.

    `stop` goes only if our server has not closed the stream first.
    """
    try:
        await stream.open()
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        log.warning("fake %s could not open the media stream: %s", carrier, exc)
        return
    try:
        await stream.play(pcm, stop=False)
        played.set()
        await until_either(ended, stream)
        if not stream.closed:
            await stream.send_json(stream.stop_message())
    finally:
        await stream.close()
