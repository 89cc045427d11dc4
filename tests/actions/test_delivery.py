"""The delivery worker against a real loopback receiver and a SQLite outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.controller.deliveries import (
    DeliveryView,
    get_delivery,
    list_deliveries,
    replay_delivery,
)
from mediaserver.controller.delivery import (
    BackoffPolicy,
    DeliveryWorker,
    sign,
    verify_signature,
)
from mediaserver.controller.events import LifecycleEvent
from mediaserver.controller.outbox import OutboxHooks, StaticCampaigns
from mediaserver.store.outbox_tables import webhook_deliveries
from mediaserver.testing.loopback_http import unused_port
from mediaserver.testing.webhook_receiver import Reply, WebhookReceiver
from tests.actions.conftest import SECRET
from tests.actions.helpers import T0, CampaignStub, full_action

NO_WAIT = BackoffPolicy(base_s=0.0, cap_s=0.0)  # retries due at once: no sleeping


def _attempt(call_id: str = "call-1") -> dict[str, Any]:
    return {
        "id": call_id,
        "campaign_id": "camp-1",
        "campaign_version": 1,
        "status": "initiated",
        "created_at": T0,
        "enqueued_at": T0,
        "scheduled_for": T0,
        "provider_call_id": "CA1",
        "recipient_number": "+14155550123",
        "dynamic_variables": {"customer_name": "Ahmed"},
        "metadata": {},
    }


async def _enqueue(
    engine: AsyncEngine,
    url: str,
    *,
    max_attempts: int = 4,
    call_id: str = "call-1",
    timeout_s: float = 2.0,
) -> str:
    """Fire call-initiated for a campaign with one action; returns its delivery id."""
    action = full_action(LifecycleEvent.CALL_INITIATED, url, timeout_s=timeout_s)
    hooks = OutboxHooks(
        StaticCampaigns({"camp-1": CampaignStub(actions=[action])}),
        max_attempts=max_attempts,
    )
    async with engine.begin() as conn:
        await hooks.fire(conn, LifecycleEvent.CALL_INITIATED, _attempt(call_id), None)
    rows = await list_deliveries(engine, status="pending", call_id=call_id)
    assert len(rows) == 1
    return rows[0].id


def _worker(engine: AsyncEngine, **kw: Any) -> DeliveryWorker:
    kw.setdefault("backoff", NO_WAIT)
    return DeliveryWorker(engine, SECRET, **kw)


async def test_delivery_is_signed_and_carries_the_mapped_input(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    delivery_id = await _enqueue(engine, f"{receiver.url}/hooks/calls")
    worker = _worker(engine)
    try:
        assert await worker.drain() == 1
    finally:
        await worker.close()

    (got,) = receiver.deliveries
    assert got.signature_ok is True
    assert got.request.path == "/hooks/calls"
    assert got.webhook_id == delivery_id
    assert got.event == "call_initiated"
    assert got.request.headers["callwright-sequence"] == "1"
    body = got.request.json()
    assert isinstance(body, dict)
    assert body["call_queue_id"] == "call-1"
    assert body["call_queue_created_at"] == "2026-12-04T09:00:00Z"

    view = await get_delivery(engine, delivery_id)
    assert view is not None
    assert view.status == "delivered"
    assert view.attempts == 1
    assert view.last_status_code == 200


def test_signature_rejects_tampering_other_secrets_and_stale_stamps() -> None:
    body = b'{"call_queue_id": "call-1"}'
    now = int(time.time())
    headers = {
        "Callwright-Webhook-Id": "wh-1",
        "Callwright-Timestamp": str(now),
        "Callwright-Signature": sign(SECRET, "wh-1", now, body),
    }
    assert verify_signature(SECRET, headers, body)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_signature(SECRET, lowered, body)
    assert not verify_signature(b"another-secret", headers, body)
    assert not verify_signature(SECRET, headers, body.replace(b"1", b"2"))
    assert not verify_signature(
        SECRET, {**headers, "Callwright-Webhook-Id": "wh-2"}, body
    )
    assert not verify_signature(SECRET, headers, body, now=now + 3600)
    rotated = {
        **headers,
        "Callwright-Signature": "v1=00 " + headers["Callwright-Signature"],
    }
    assert verify_signature(SECRET, rotated, body)


async def test_5xx_is_retried_with_the_same_webhook_id(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    receiver.script(Reply(status=503), Reply(status=500))
    delivery_id = await _enqueue(engine, receiver.url)
    worker = _worker(engine)
    try:
        await worker.drain()
    finally:
        await worker.close()

    assert [d.reply.status for d in receiver.deliveries] == [503, 500, 200]
    assert {d.webhook_id for d in receiver.deliveries} == {delivery_id}
    assert all(d.signature_ok for d in receiver.deliveries)
    view = await get_delivery(engine, delivery_id)
    assert view is not None
    assert (view.status, view.attempts) == ("delivered", 3)


async def test_timeouts_and_dropped_connections_are_retried(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    receiver.script(Reply(delay_s=2.0), Reply(drop=True))
    delivery_id = await _enqueue(engine, receiver.url, timeout_s=0.3)
    worker = _worker(engine)
    try:
        await worker.drain()
    finally:
        await worker.close()

    replies = [(d.reply.delay_s, d.reply.drop) for d in receiver.deliveries]
    assert replies == [(2.0, False), (0.0, True), (0.0, False)]
    view = await get_delivery(engine, delivery_id)
    assert view is not None
    assert view.status == "delivered"
    assert view.attempts == 3


async def test_refused_connections_exhaust_the_attempts_then_replay(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/hook"
    delivery_id = await _enqueue(engine, dead, max_attempts=3)
    worker = _worker(engine)
    try:
        assert await worker.drain() == 3
        (failed,) = await list_deliveries(engine)  # failed ones by default
        assert failed.id == delivery_id
        assert failed.attempts == 3
        assert failed.last_error is not None
        assert "unreachable" in failed.last_error
        assert failed.input["call_queue_id"] == "call-1"

        # Nothing is retried once failed, until someone replays it.
        assert await worker.drain() == 0
        assert not await replay_delivery(engine, "no-such-id")
        assert await replay_delivery(engine, delivery_id)
        assert not await replay_delivery(engine, delivery_id)  # pending now
        assert await worker.drain() == 3  # a replay gets a fresh set of attempts
    finally:
        await worker.close()
    assert not receiver.deliveries


async def test_replay_after_failure_reaches_the_receiver_with_the_same_id(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    receiver.script(Reply(status=502), Reply(status=502))
    delivery_id = await _enqueue(engine, receiver.url, max_attempts=2)
    worker = _worker(engine)
    try:
        await worker.drain()
        assert [d.id for d in await list_deliveries(engine)] == [delivery_id]
        assert await replay_delivery(engine, delivery_id)
        await worker.drain()
    finally:
        await worker.close()

    assert [d.reply.status for d in receiver.deliveries] == [502, 502, 200]
    assert {d.webhook_id for d in receiver.deliveries} == {delivery_id}
    assert await list_deliveries(engine) == []


async def test_a_4xx_refusal_is_final(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    receiver.script(Reply(status=400))
    delivery_id = await _enqueue(engine, receiver.url)
    worker = _worker(engine)
    try:
        await worker.drain()
    finally:
        await worker.close()
    assert len(receiver.deliveries) == 1
    view = await get_delivery(engine, delivery_id)
    assert view is not None
    assert (view.status, view.attempts, view.last_status_code) == ("failed", 1, 400)


async def test_a_slow_receiver_holds_up_only_its_own_delivery(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    async with WebhookReceiver(secret=SECRET, default=Reply(delay_s=30)) as slow:
        slow_id = await _enqueue(engine, slow.url, call_id="call-slow", timeout_s=60)
        fast_id = await _enqueue(engine, receiver.url, call_id="call-fast")
        worker = _worker(engine, concurrency=4, poll_s=0.05)
        task = asyncio.create_task(worker.run(), name="delivery-worker")
        try:
            await receiver.wait_for(1)
            await slow.wait_for(1)
            fast = await _settled(engine, fast_id)
            pending = await get_delivery(engine, slow_id)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await worker.close()
    assert fast.status == "delivered"
    assert pending is not None
    assert pending.status == "pending"  # still waiting on the slow receiver


async def _settled(engine: AsyncEngine, delivery_id: str) -> DeliveryView:
    """The delivery once its result is written (right after the reply)."""
    for _ in range(200):
        view = await get_delivery(engine, delivery_id)
        assert view is not None
        if view.status != "pending":
            return view
        await asyncio.sleep(0.01)
    raise AssertionError(f"delivery {delivery_id} never settled")


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = BackoffPolicy(base_s=1.0, cap_s=60.0)
    rng = random.Random(7)
    for attempts in range(1, 10):
        ceiling = min(60.0, 2.0 ** (attempts - 1))
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range
        assert len(set(delays)) > 150  # jittered, not a fixed schedule


async def test_worker_client_is_httpx(engine: AsyncEngine) -> None:
    client = httpx.AsyncClient()
    worker = DeliveryWorker(engine, SECRET, client=client)
    await worker.close()
    assert not client.is_closed  # a client the caller gave stays the caller's
    await client.aclose()


def test_the_documented_verifier_and_example_match_the_sender() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    verifier = namespace["callwright_signature_ok"]

    body = b'{"call_queue_id":"call-1"}'
    stamp = int(time.time())
    headers = httpx.Headers(
        {
            "Callwright-Webhook-Id": "wh-9",
            "Callwright-Timestamp": str(stamp),
            "Callwright-Signature": sign(SECRET, "wh-9", stamp, body),
        }
    )
    assert verifier(SECRET, headers, body)
    assert not verifier(SECRET, headers, body + b" ")

    example = sign(
        b"whsec-example",
        "6f1c2a7e-0d4b-4c1e-9a53-2b8f0e7d1c44",
        1796374800,
        b'{"call_id":"c1"}',
    )
    assert example in doc


async def test_two_workers_never_send_the_same_row(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    ids = {await _enqueue(engine, receiver.url, call_id=f"call-{i}") for i in range(20)}
    first, second = _worker(engine, concurrency=3), _worker(engine, concurrency=3)
    try:
        tried = await asyncio.gather(first.drain(), second.drain())
    finally:
        await first.close()
        await second.close()
    assert sum(tried) == 20
    assert sorted(d.webhook_id for d in receiver.deliveries) == sorted(ids)


async def test_values_without_a_json_form_do_not_undo_the_change(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    action = full_action(LifecycleEvent.CALL_INITIATED, receiver.url)
    hooks = OutboxHooks(StaticCampaigns({"camp-1": CampaignStub(actions=[action])}))
    odd = object()
    attempt = {**_attempt(), "metadata": {"tags": {"vip"}}, "dynamic_variables": odd}
    async with engine.begin() as conn:
        assert await hooks.fire(conn, LifecycleEvent.CALL_INITIATED, attempt, None)
    worker = _worker(engine)
    try:
        assert await worker.drain() == 1
    finally:
        await worker.close()
    body = receiver.deliveries[0].request.json()
    assert isinstance(body, dict)
    assert body["call_queue_metadata"] == {"tags": ["vip"]}
    assert body["call_queue_dynamic_variables"] == repr(odd)


async def test_retry_after_is_honoured_within_the_cap(
    engine: AsyncEngine, receiver: WebhookReceiver
) -> None:
    receiver.script(Reply(status=429, retry_after=3600))
    delivery_id = await _enqueue(engine, receiver.url)
    worker = _worker(engine, backoff=BackoffPolicy(base_s=0.0, cap_s=7200.0))
    try:
        assert await worker.drain() == 1  # not due again for an hour
    finally:
        await worker.close()
    view = await get_delivery(engine, delivery_id)
    assert view is not None
    assert (view.status, view.last_status_code) == ("pending", 429)
    wait = view.next_attempt_at - view.created_at
    assert dt.timedelta(minutes=59) < wait < dt.timedelta(minutes=61)


async def test_rows_are_claimed_only_for_free_slots(engine: AsyncEngine) -> None:
    async with WebhookReceiver(secret=SECRET, default=Reply(delay_s=30)) as slow:
        for i in range(5):
            await _enqueue(engine, slow.url, call_id=f"slow-{i}", timeout_s=60)
        worker = _worker(engine, concurrency=2, poll_s=0.02)
        task = asyncio.create_task(worker.run(), name="delivery-worker")
        try:
            await slow.wait_for(2)
            await asyncio.sleep(0.2)  # give a claim-ahead bug the time to show
            async with engine.connect() as conn:
                leased = await conn.scalar(
                    sa.select(sa.func.count()).where(
                        webhook_deliveries.c.lease_until.is_not(None)
                    )
                )
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await worker.close()
    assert len(slow.deliveries) == 2
    assert leased == 2  # the other three wait unclaimed, free for other nodes
