"""Shared pieces for the queue, dispatcher and crash tests (queue helper's)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec

from mediaserver.controller.campaign import (
    CallerIdPolicy,
    CallingNumber,
    CallingWindow,
    Campaign,
    RetryPolicy,
)
from mediaserver.controller.dialer import CarrierEvent, DialRequest, DialResult
from mediaserver.controller.launch import LaunchRequest

T0 = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in New York
ALL_DAY = CallingWindow(start="00:00", end="24:00")


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def campaign(**changes: Any) -> Campaign:
    base = Campaign(
        id="camp-1",
        name="Test campaign",
        version=1,
        provider="simulated",
        agent_url="ws://127.0.0.1:1/agent",
        caller_id=CallerIdPolicy(
            default=CallingNumber(
                id="cn-1", number="+12125550100", provider="simulated"
            )
        ),
        retry=RetryPolicy(on_busy=False, on_no_answer=False, max_retries=0),
        calling_window=ALL_DAY,
        max_concurrent_calls=10,
        calls_per_second=1000.0,
    )
    return msgspec.structs.replace(base, **changes)


def launch(number: str = "+12125550123", **changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {"campaign_id": "camp-1", "number": number}
    fields.update(changes)
    return LaunchRequest(**fields)


class RecordingDialer:
    """A `Dialer` that accepts every dial and remembers it; nothing rings."""

    name = "simulated"

    def __init__(self) -> None:
        self.requests: list[DialRequest] = []
        self.hangups: list[str] = []

    async def dial(self, request: DialRequest) -> DialResult:
        self.requests.append(request)
        return DialResult(provider_call_id=f"P-{request.call_id}")

    async def hangup(self, provider_call_id: str) -> None:
        self.hangups.append(provider_call_id)

    async def close(self) -> None:
        return None


class EventLog:
    """A `CarrierEventSink` that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[CarrierEvent] = []

    async def carrier_event(self, event: CarrierEvent) -> None:
        self.events.append(event)


async def wait_until(condition: Callable[[], object], limit_s: float = 5.0) -> None:
    """Poll `condition` until it holds or `limit_s` passes; the test then asserts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            return
        await asyncio.sleep(0.01)
