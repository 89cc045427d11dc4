"""Test doubles for the carrier tests: an event sink and a callback server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar

from mediaserver.controller.dialer import (
    CarrierEvent,
    CarrierStatus,
    Dialer,
    DialRequest,
)
from mediaserver.errors import CarrierError
from mediaserver.testing.fake_carrier_http import LoopbackServer


async def dial_refused(dialer: Dialer, request: DialRequest) -> CarrierError:
    """The `CarrierError` a dial raises (a test fails if none); closes `dialer`."""
    try:
        with pytest.raises(CarrierError) as caught:
            await dialer.dial(request)
    finally:
        await dialer.close()
    return caught.value


def callback_dial(
    carrier: str, to: str, callback_url: str, call_id: str
) -> DialRequest:
    """A dial whose status reaches `callback_url`; its media leg goes nowhere."""
    return DialRequest(
        call_id=call_id,
        from_number="+15550002222",
        to_number=to,
        media_url=f"wss://127.0.0.1:1/{carrier}",
        media_token="t.1.m",
        status_callback_url=callback_url,
    )


class RecordingSink:
    """A `CarrierEventSink` that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[CarrierEvent] = []
        self._changed = asyncio.Condition()

    async def carrier_event(self, event: CarrierEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def statuses(self, provider_call_id: str) -> list[CarrierStatus]:
        return [e.status for e in self.events if e.provider_call_id == provider_call_id]

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.events) >= count)


class AppServer:
    """A Litestar app with our callback handlers, served on loopback."""

    def __init__(self) -> None:
        self._server = LoopbackServer(None, "callbacks")

    @property
    def base_url(self) -> str:
        return self._server.bind()

    async def serve(self, handlers: list[Any]) -> str:
        self._server.app = Litestar(route_handlers=handlers, logging_config=None)
        return await self._server.start()

    async def close(self) -> None:
        await self._server.close()
