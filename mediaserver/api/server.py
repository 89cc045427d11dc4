"""Running the HTTP API inside our own event loop.

uvicorn serves the Litestar app in-process (`loop="none"`: it uses the
running loop, which is uvloop under `callwright serve`). The service owns
the signals, so uvicorn's own handlers are switched off, and the socket is
bound before the server starts so that port 0 gives a known port at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from litestar import Litestar

logger = logging.getLogger(__name__)


class _QuietSignalsServer(uvicorn.Server):
    """uvicorn without its signal handlers: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one.

    The protocol is named (IPPROTO_TCP, not 0) because uvicorn sets
    TCP_NODELAY on accepted connections only when the socket says it is
    TCP; without it a response written in two parts waits out the
    client's delayed ACK (about 40 ms a request).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class ApiServer:
    """The HTTP listener; `start` returns once it accepts connections."""

    def __init__(
        self,
        app: Litestar,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        self._sock = sock or bind_socket(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            loop="none",
            lifespan="on",
            log_config=None,  # keep the service's logging set-up
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = _QuietSignalsServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._sock]), name="http-api"
        )
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises the start-up failure
                raise RuntimeError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        logger.info("HTTP API listening on %s", self.url)

    async def stop(self) -> None:
        if self._task is None:
            self._sock.close()
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None
            self._sock.close()
        logger.info("HTTP API stopped")
