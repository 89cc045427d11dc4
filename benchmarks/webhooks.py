"""What lifecycle actions cost: outbox writes per status change, and deliveries/s.

    .venv/bin/python -m benchmarks.webhooks [--calls 300] [--deliveries 1000]

Runs on a temporary SQLite file and a loopback webhook receiver (nothing
leaves 127.0.0.1). Prints: status changes per second with no hooks and with
the outbox writing one delivery per event; deliveries per second through
the worker; and the same while a dead-slow receiver holds half the
worker's slots.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from mediaserver.controller.actions import Action, Tool
from mediaserver.controller.delivery import BackoffPolicy, DeliveryWorker
from mediaserver.controller.events import EVENT_VARIABLES, LifecycleEvent
from mediaserver.controller.hooks import LifecycleHooks
from mediaserver.controller.outbox import OutboxHooks, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import NewAttempt, QueueStore
from mediaserver.testing.webhook_receiver import Reply, WebhookReceiver

SECRET = b"bench-secret"
_STEPS = (CallStatus.DISPATCHING, CallStatus.INITIATED, CallStatus.ANSWERED)


class _Campaign:
    def __init__(self, url: str) -> None:
        names = EVENT_VARIABLES[LifecycleEvent.CALL_INITIATED]
        tool = Tool(
            name="bench",
            url=url,
            input_schema={"type": "object", "properties": {n: {} for n in names}},
        )
        self.actions = [
            Action(event=e.value, tool=tool, mapping={"call_queue_id": "call_queue_id"})
            for e in LifecycleEvent
        ]
        self.post_analysis = None


def _attempt(i: int) -> NewAttempt:
    return NewAttempt(
        contact_id=f"contact-{i}",
        campaign_id="camp-1",
        campaign_version=1,
        recipient_number="+14155550123",
        calling_number_id="num-1",
        calling_number="+14155550000",
        calling_number_provider="simulated",
        scheduled_for=dt.datetime.now(dt.UTC),
    )


async def _transitions(folder: Path, hooks: LifecycleHooks | None, calls: int) -> float:
    """Status changes per second through the real queue store."""
    engine = make_engine(f"sqlite:///{folder / f'q{id(hooks)}.sqlite3'}")
    await create_schema(engine)
    store = QueueStore(engine, hooks=hooks)
    attempts = await store.enqueue_many([_attempt(i) for i in range(calls)])
    started = time.perf_counter()
    for attempt in attempts:
        for status in _STEPS:
            async with store.transaction() as conn:
                await store.transition(conn, attempt.id, status)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return calls * len(_STEPS) / elapsed


async def _deliveries(folder: Path, count: int, with_slow: bool) -> float:
    """Deliveries per second from the outbox to a loopback receiver."""
    engine = make_engine(f"sqlite:///{folder / f'd{with_slow}.sqlite3'}")
    await create_schema(engine)
    async with (
        WebhookReceiver(secret=SECRET) as fast,
        WebhookReceiver(default=Reply(delay_s=30)) as slow,
    ):
        hooks = OutboxHooks(StaticCampaigns({"camp-1": _Campaign(fast.url)}))
        slow_hooks = OutboxHooks(StaticCampaigns({"camp-1": _Campaign(slow.url)}))
        async with engine.begin() as conn:
            for i in range(count):
                row = {
                    "id": f"call-{i}",
                    "campaign_id": "camp-1",
                    "status": "initiated",
                }
                await hooks.fire(conn, LifecycleEvent.CALL_INITIATED, row, None)
            for i in range(4 if with_slow else 0):
                row = {
                    "id": f"slow-{i}",
                    "campaign_id": "camp-1",
                    "status": "initiated",
                }
                await slow_hooks.fire(conn, LifecycleEvent.CALL_INITIATED, row, None)

        worker = DeliveryWorker(
            engine, SECRET, concurrency=8, poll_s=0.01, backoff=BackoffPolicy(base_s=60)
        )
        task = asyncio.create_task(worker.run(), name="bench-delivery-worker")
        started = time.perf_counter()
        try:
            await fast.wait_for(count, timeout_s=120)
            elapsed = time.perf_counter() - started
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await worker.close()
    await engine.dispose()
    return count / elapsed


async def main(calls: int, deliveries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bare = await _transitions(folder, None, calls)
        hooks = OutboxHooks(
            StaticCampaigns({"camp-1": _Campaign("http://127.0.0.1:9/")})
        )
        with_outbox = await _transitions(folder, hooks, calls)
        plain = await _deliveries(folder, deliveries, False)
        held = await _deliveries(folder, deliveries, True)
        print(f"status changes/s, no hooks:                 {bare:8.0f}")
        print(f"status changes/s, outbox + 1 action:        {with_outbox:8.0f}")
        print(f"deliveries/s, concurrency 8:                {plain:8.0f}")
        print(f"deliveries/s, 4 of 8 slots held by a slow one: {held:5.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--deliveries", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.deliveries))
