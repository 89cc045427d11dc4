"""The actions routes on a real API server on loopback, behind the API key."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.api.app import create_app
from mediaserver.api.control import ControlBackend
from mediaserver.api.routes_actions import actions_router
from mediaserver.api.server import ApiServer
from mediaserver.controller.delivery import BackoffPolicy, DeliveryWorker
from mediaserver.controller.events import LifecycleEvent
from mediaserver.controller.outbox import OutboxHooks, StaticCampaigns
from mediaserver.plan import CallOutcome, EndType, Turn
from mediaserver.store.campaigns import CampaignStore
from mediaserver.store.queue import QueueStore
from mediaserver.testing.loopback_http import unused_port
from tests.actions.conftest import SECRET
from tests.actions.helpers import T0, CampaignStub, full_action

KEY = "actions-test-key-0123456789"


@pytest_asyncio.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    backend = ControlBackend(QueueStore(engine), CampaignStore(engine))
    app = create_app(backend, [KEY], callbacks=[actions_router(engine)])
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            yield http
    finally:
        await server.stop()


async def test_failed_deliveries_are_listed_and_replayed(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/"
    action = full_action(LifecycleEvent.CALL_ANSWERED, dead)
    hooks = OutboxHooks(
        StaticCampaigns({"camp-1": CampaignStub(actions=[action])}), max_attempts=1
    )
    attempt = {"id": "call-9", "campaign_id": "camp-1", "status": "answered"}
    async with engine.begin() as conn:
        await hooks.on_transition(conn, attempt, "ringing", "answered")
    worker = DeliveryWorker(engine, SECRET, backoff=BackoffPolicy(base_s=0, cap_s=0))
    try:
        await worker.drain()
    finally:
        await worker.close()

    page = (await client.get("/webhooks/deliveries")).json()
    (item,) = page["items"]
    assert (item["call_id"], item["status"], item["event"]) == (
        "call-9",
        "failed",
        "call_answered",
    )
    assert item["input"]["call_queue_id"] == "call-9"

    anonymous = await client.get("/webhooks/deliveries", headers={"Authorization": ""})
    assert anonymous.status_code == 401

    replayed = await client.post(f"/webhooks/deliveries/{item['id']}/replay")
    assert replayed.status_code == 202
    again = await client.post(f"/webhooks/deliveries/{item['id']}/replay")
    assert again.status_code == 404  # it is pending, not failed
    one = (await client.get(f"/webhooks/deliveries/{item['id']}")).json()
    assert (one["status"], one["attempts"]) == ("pending", 0)
    assert (await client.get("/webhooks/deliveries")).json()["items"] == []

    events = (await client.get("/events/call-9")).json()
    assert [e["event"] for e in events] == ["call_answered"]

    # The answer opened the conversation; the outcome closes it.
    outcome = CallOutcome(
        call_id="call-9",
        conversation_id="call-9",
        started_at=T0,
        ended_at=T0 + dt.timedelta(seconds=9),
        end_type=EndType.VOICEMAIL_ENDED,
        turns=[Turn(speaker="agent", text="Sorry we missed you.")],
    )
    async with engine.begin() as conn:
        await hooks.call_ended(conn, outcome, {**attempt, "status": "completed"})
    record = (await client.get("/conversations/call-9")).json()
    assert record["end_type"] == "voicemail_ended"
    assert record["transcript"] == "Agent: Sorry we missed you."
    assert (await client.get("/conversations/nope")).status_code == 404
    assert (await client.get("/analyses/call-9")).status_code == 404
    events = (await client.get("/events/call-9")).json()
    assert [e["event"] for e in events] == ["call_answered", "call_ended"]
