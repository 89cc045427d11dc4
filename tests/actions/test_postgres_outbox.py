"""The outbox on a real PostgreSQL server: two nodes' workers share one outbox.

Needs CALLWRIGHT_PG_URL; skipped without it unless CALLWRIGHT_PG_REQUIRED=1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mediaserver.controller.deliveries import list_events
from mediaserver.controller.delivery import BackoffPolicy, DeliveryWorker
from mediaserver.controller.events import LifecycleEvent
from mediaserver.controller.outbox import OutboxHooks, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.store.db import make_engine
from mediaserver.store.queue import QueueStore
from mediaserver.testing.webhook_receiver import WebhookReceiver
from tests.actions.conftest import SECRET
from tests.actions.helpers import CampaignStub, full_action, new_attempt
from tests.actions.seed import seed_tables
from tests.postgres_support import fresh_schema, pg_url

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def url() -> str:
    return pg_url()


@pytest_asyncio.fixture
async def schema(url: str) -> AsyncIterator[str]:
    async with fresh_schema(url, "cw_outbox_") as name:
        yield name


async def test_two_nodes_deliver_each_event_once(
    url: str, schema: str, receiver: WebhookReceiver
) -> None:
    nodes = [make_engine(url, schema=schema) for _ in range(2)]
    action = full_action(LifecycleEvent.CALL_INITIATED, receiver.url)
    hooks = OutboxHooks(StaticCampaigns({"camp-1": CampaignStub(actions=[action])}))
    store = QueueStore(nodes[0], hooks=hooks)
    workers = [
        DeliveryWorker(
            e, SECRET, concurrency=4, backoff=BackoffPolicy(base_s=0, cap_s=0)
        )
        for e in nodes
    ]
    try:
        ids = []
        for i in range(30):
            attempt = await store.enqueue(new_attempt(contact=f"pg-{i}"))
            for status in (CallStatus.DISPATCHING, CallStatus.INITIATED):
                async with store.transaction() as conn:
                    await store.transition(conn, attempt.id, status)
            ids.append(attempt.id)

        tried = await asyncio.gather(*(w.drain() for w in workers))
        assert sum(tried) == 30
        bodies = [d.request.json() for d in receiver.deliveries]
        calls = [body["call_queue_id"] for body in bodies]  # type: ignore[index]
        assert sorted(calls) == sorted(ids)
        assert all(d.signature_ok for d in receiver.deliveries)

        events = await list_events(nodes[1], ids[0])
        assert [e["event"] for e in events] == ["call_initiated"]
        assert list(events[0]["variables"]) == seed_tables()["call_initiated"]
    finally:
        for worker in workers:
            await worker.close()
        for engine in nodes:
            await engine.dispose()


async def test_sweep_and_recorder_run_on_postgres(url: str, schema: str) -> None:
    engine = make_engine(url, schema=schema)
    now = [dt.datetime.now(dt.UTC)]
    hooks = OutboxHooks(StaticCampaigns({}), clock=lambda: now[0])
    store = QueueStore(engine, hooks=hooks, clock=lambda: now[0])
    try:
        attempt = await store.enqueue(new_attempt(contact="pg-lost"))
        for status in (
            CallStatus.DISPATCHING,
            CallStatus.INITIATED,
            CallStatus.ANSWERED,
            CallStatus.COMPLETED,
        ):
            async with store.transaction() as conn:
                await store.transition(conn, attempt.id, status)
        now[0] += dt.timedelta(minutes=10)
        assert await hooks.sweep_overdue(engine) == 1
        assert await hooks.sweep_overdue(engine) == 0
        names = [e["event"] for e in await list_events(engine, attempt.id)]
        assert names == ["call_initiated", "call_answered", "call_ended"]
    finally:
        await engine.dispose()
