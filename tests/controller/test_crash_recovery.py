"""Reconciling attempts a crash left mid-dispatch or mid-call, step by step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from mediaserver.carriers.simulated import SimulatedCarrier
from mediaserver.controller.dialer import CarrierEvent, CarrierStatus
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore
from tests.controller.queue_support import (
    FakeClock,
    RecordingDialer,
    campaign,
    launch,
)
from tests.controller.test_queue_store import new_attempt


class LookupDialer(RecordingDialer):
    """A dialer whose carrier remembers calls: `lookup` answers from a table."""

    def __init__(self) -> None:
        super().__init__()
        self.known: dict[str, CarrierStatus] = {}

    async def lookup(self, provider_call_id: str) -> CarrierEvent | None:
        status = self.known.get(provider_call_id)
        if status is None:
            return None
        return CarrierEvent(
            provider="simulated",
            provider_call_id=provider_call_id,
            status=status,
            at=FakeClock()(),
        )


@pytest_asyncio.fixture
async def engine_url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite:///{tmp_path / 'q.sqlite3'}"
    engine = make_engine(url)
    await create_schema(engine)
    await engine.dispose()
    yield url


async def node(
    url: str, dialer: Any, clock: FakeClock, node_id: str = "node-1"
) -> Controller:
    return Controller(
        QueueStore(make_engine(url), clock=clock),
        StaticCampaigns([campaign()]),
        {"simulated": dialer},
        media_urls={},
        token_secret=b"r" * 32,
        node_id=node_id,
        clock=clock,
        lease_s=30,
    )


async def test_mid_dispatch_states_are_reconciled(engine_url: str) -> None:
    clock = FakeClock()
    before = await node(engine_url, RecordingDialer(), clock)
    store = before.store
    # Ids a1..a4 are claimed in that order.
    undialled, intended, other, live = await store.enqueue_many(
        [new_attempt(i) for i in range(1, 5)]
    )
    # The crash: two claimed by us (one with its intent committed), one claimed
    # by another node whose lease has not expired, one still being dispatched.
    await store.claim("camp-1", owner="node-1", limit=2, lease_s=30)
    await store.mark_dial_intent([intended.id], "node-1")
    await store.claim("camp-1", owner="node-2", limit=1, lease_s=300)
    await store.claim("camp-1", owner="node-3", limit=1, lease_s=30)
    clock.advance(31)  # node-3's lease has run out; node-2's has not
    await store.engine.dispose()

    dialer = RecordingDialer()
    after = await node(engine_url, dialer, clock)
    await after.recover()
    await after.dispatcher.dispatch_once()
    await after.dispatcher.drain()

    def status(attempt: Any) -> Any:
        return after.store.get(attempt.id)

    assert (await status(undialled)).status is CallStatus.INITIATED  # dialled now
    failed = await status(intended)
    assert failed.status is CallStatus.FAILED
    assert "outcome unknown" in failed.initiation_error
    assert (
        await status(other)
    ).status is CallStatus.DISPATCHING  # not ours, lease live
    assert (
        await status(live)
    ).status is CallStatus.INITIATED  # expired: requeued, dialled
    assert sorted(r.call_id for r in dialer.requests) == sorted([undialled.id, live.id])
    await after.store.engine.dispose()


async def test_in_flight_calls_asked_through_lookup(engine_url: str) -> None:
    clock = FakeClock()
    dialer = LookupDialer()
    before = await node(engine_url, dialer, clock)
    answered, gone = await before.enqueue(
        [launch("+12125550001"), launch("+12125550002")]
    )
    await before.dispatcher.dispatch_once()
    await before.dispatcher.drain()
    await before.store.engine.dispose()

    dialer.known = {f"P-{answered.id}": CarrierStatus.COMPLETED}
    after = await node(engine_url, dialer, clock)
    await after.recover()

    done = await after.store.get(answered.id)
    lost = await after.store.get(gone.id)
    assert done is not None
    assert done.status is CallStatus.COMPLETED
    assert lost is not None
    assert lost.status is CallStatus.FAILED  # the carrier does not know it
    assert len(dialer.requests) == 2
    await after.store.engine.dispose()


async def test_simulated_calls_running_at_the_crash_end_failed(
    engine_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    log_path = tmp_path / "sim.log"
    carrier = SimulatedCarrier(
        log_path=log_path, speed=100, default_behavior="answer;hold=600"
    )
    before = await node(engine_url, carrier, clock)
    carrier.bind(before, before)
    (attempt,) = await before.enqueue([launch()])
    await before.dispatcher.dispatch_once()
    await before.dispatcher.drain()
    await carrier.close()  # the process dies with the call up
    await before.store.engine.dispose()

    fresh = SimulatedCarrier(log_path=log_path)
    after = await node(engine_url, fresh, clock)
    fresh.bind(after, after)
    await after.recover()
    stored = await after.store.get(attempt.id)
    assert stored is not None
    assert stored.status is CallStatus.FAILED
    await after.store.engine.dispose()


async def test_calls_with_lost_endings_are_settled_when_overdue(
    engine_url: str,
) -> None:
    clock = FakeClock()
    dialer = LookupDialer()
    ctl = await node(engine_url, dialer, clock)
    silent, running, ended = await ctl.enqueue(
        [launch("+12125550001"), launch("+12125550002"), launch("+12125550003")]
    )
    await ctl.dispatcher.dispatch_once()
    await ctl.dispatcher.drain()
    dialer.known = {
        f"P-{running.id}": CarrierStatus.ANSWERED,
        f"P-{ended.id}": CarrierStatus.BUSY,
    }

    clock.advance(60)  # well within ring timeout + max call length
    assert await ctl.settle_overdue() == 0
    clock.advance(30 + 600 + 120)
    assert await ctl.settle_overdue() == 3

    statuses = {a.id: a.status for a in await ctl.store.all_attempts()}
    assert statuses[silent.id] is CallStatus.FAILED  # the carrier forgot it
    assert statuses[running.id] is CallStatus.FAILED  # hung up: far too long
    assert statuses[ended.id] is CallStatus.BUSY  # the ending we had missed
    assert dialer.hangups == [f"P-{running.id}"]
    assert await ctl.store.active_counts() == {}
    await ctl.store.engine.dispose()
