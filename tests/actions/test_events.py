"""Every lifecycle event fires with exactly the seed's variables, through the store."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.controller.deliveries import list_events
from mediaserver.controller.events import (
    ANALYSIS_VARIABLES,
    EVENT_VARIABLES,
    LifecycleEvent,
    event_for_transition,
)
from mediaserver.controller.outbox import (
    OutboxHooks,
    RecordingObserver,
    StaticCampaigns,
)
from mediaserver.controller.service import Controller
from mediaserver.controller.status import CallStatus
from mediaserver.plan import CallOutcome, EndType, Turn
from mediaserver.store.campaigns import CampaignStore
from mediaserver.store.outbox_tables import webhook_deliveries
from mediaserver.store.queue import QueueStore
from tests.actions.helpers import T0, every_event_campaign, new_attempt
from tests.actions.seed import seed_tables

S = CallStatus


def test_event_tables_are_the_seeds() -> None:
    seed = seed_tables()
    for event in LifecycleEvent:
        assert list(EVENT_VARIABLES[event]) == seed[event.value], event
    assert list(ANALYSIS_VARIABLES) == seed["post_analysis"]
    assert "call_queue_route_id" in ANALYSIS_VARIABLES
    assert "call_queue_campaign_id" not in ANALYSIS_VARIABLES


def test_transitions_map_to_events() -> None:
    assert event_for_transition("dispatching", "initiation_failed") == (
        LifecycleEvent.CALL_INITIATION_FAILURE
    )
    assert event_for_transition("ringing", "busy") == LifecycleEvent.CALL_DECLINED
    assert event_for_transition("ringing", "no_answer") == LifecycleEvent.CALL_MISSED
    assert event_for_transition("initiated", "failed") == LifecycleEvent.CALL_MISSED
    assert event_for_transition("answered", "failed") == LifecycleEvent.CALL_ENDED
    assert event_for_transition("initiated", "ringing") is None
    assert event_for_transition("queued", "dispatching") is None


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


async def _store(engine: AsyncEngine) -> tuple[QueueStore, OutboxHooks]:
    clock = _Clock()
    campaigns = StaticCampaigns({"camp-1": every_event_campaign("http://127.0.0.1:9/")})
    hooks = OutboxHooks(campaigns, clock=clock)
    return QueueStore(engine, hooks=hooks, clock=clock), hooks


async def _walk(store: QueueStore, attempt_id: str, *steps: CallStatus) -> Any:
    row = None
    for status in steps:
        values = {"provider_call_id": "CA123"} if status is S.INITIATED else None
        if status is S.INITIATION_FAILED:
            values = {"initiation_error": "provider_error: 21215"}
        async with store.transaction() as conn:
            row = await store.transition(conn, attempt_id, status, values=values)
    return row


async def _deliveries(engine: AsyncEngine, call_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(webhook_deliveries)
        .where(webhook_deliveries.c.call_id == call_id)
        .order_by(webhook_deliveries.c.sequence)
    )
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


def _assert_exact(
    events: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> None:
    seed = seed_tables()
    for event, delivery in zip(events, deliveries, strict=True):
        assert list(event["variables"]) == seed[event["event"]]
        assert set(msgspec.json.decode(delivery["body"])) == set(seed[event["event"]])
        assert delivery["event_id"] == event["id"]


async def test_answered_call_fires_initiated_answered_ended(
    engine: AsyncEngine,
) -> None:
    store, hooks = await _store(engine)
    attempt = await store.enqueue(new_attempt())
    async with store.transaction() as conn:
        await store.set_fields(conn, attempt.id, conversation_id="conv-1")
    await _walk(store, attempt.id, S.DISPATCHING, S.INITIATED, S.RINGING, S.ANSWERED)

    # The media plane reports before the carrier's "completed".
    outcome = CallOutcome(
        call_id=attempt.id,
        conversation_id="conv-1",
        started_at=T0,
        ended_at=T0 + dt.timedelta(seconds=42),
        end_type=EndType.USER_HANGUP,
        turns=[
            Turn(speaker="agent", text="Hello Ahmed"),
            Turn(speaker="user", text="Hi"),
        ],
    )
    async with store.transaction() as conn:
        current = await store.get(attempt.id, conn=conn)
        assert current is not None
        assert current.status is S.ANSWERED
        await hooks.call_ended(conn, outcome, msgspec.to_builtins(current))
    assert [e["event"] for e in await list_events(engine, attempt.id)] == [
        "call_initiated",
        "call_answered",
    ]
    await _walk(store, attempt.id, S.COMPLETED)

    events = await list_events(engine, attempt.id)
    assert [e["event"] for e in events] == [
        "call_initiated",
        "call_answered",
        "call_ended",
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    deliveries = await _deliveries(engine, attempt.id)
    _assert_exact(events, deliveries)

    ended = events[2]["variables"]
    assert ended["conversation_end_type"] == "user_hangup"
    assert ended["conversation_turns"][0] == {
        "speaker": "agent",
        "text": "Hello Ahmed",
        "start_ms": None,
        "end_ms": None,
    }
    assert ended["conversation_turns_simplified"] == "Agent: Hello Ahmed\nUser: Hi"
    assert ended["call_queue_status"] == "completed"
    assert ended["call_queue_provider_call_id"] == "CA123"
    assert ended["call_queue_dynamic_variables"] == {"customer_name": "Ahmed"}
    assert events[1]["variables"]["conversation_id"] == "conv-1"
    assert events[1]["variables"]["conversation_start_time"].endswith("Z")


async def test_carrier_completion_first_waits_for_the_record(
    engine: AsyncEngine,
) -> None:
    store, hooks = await _store(engine)
    attempt = await store.enqueue(new_attempt())
    await _walk(store, attempt.id, S.DISPATCHING, S.INITIATED, S.ANSWERED, S.COMPLETED)
    assert "call_ended" not in [
        e["event"] for e in await list_events(engine, attempt.id)
    ]

    outcome = CallOutcome(
        call_id=attempt.id,
        conversation_id=attempt.id,
        started_at=T0,
        ended_at=T0 + dt.timedelta(seconds=5),
        end_type=EndType.AGENT_HANGUP,
    )
    row = {**msgspec.to_builtins(attempt), "status": "completed"}
    async with store.transaction() as conn:
        await hooks.call_ended(conn, outcome, row)
    async with store.transaction() as conn:  # a duplicate report fires nothing
        await hooks.call_ended(conn, outcome, row)

    events = await list_events(engine, attempt.id)
    assert [e["event"] for e in events] == [
        "call_initiated",
        "call_answered",
        "call_ended",
    ]
    _assert_exact(events, await _deliveries(engine, attempt.id))


async def test_failure_paths_fire_their_events(engine: AsyncEngine) -> None:
    store, _ = await _store(engine)
    paths = {
        "call_initiation_failure": (S.DISPATCHING, S.INITIATION_FAILED),
        "call_declined": (S.DISPATCHING, S.INITIATED, S.RINGING, S.DECLINED),
        "call_missed": (S.DISPATCHING, S.INITIATED, S.RINGING, S.NO_ANSWER),
    }
    for index, (final, steps) in enumerate(paths.items()):
        attempt = await store.enqueue(new_attempt(contact=f"c{index}"))
        await _walk(store, attempt.id, *steps)
        events = await list_events(engine, attempt.id)
        names = [e["event"] for e in events]
        expected = (
            [final] if final == "call_initiation_failure" else ["call_initiated", final]
        )
        assert names == expected
        _assert_exact(events, await _deliveries(engine, attempt.id))
        if final == "call_initiation_failure":
            assert events[0]["variables"]["call_queue_initiation_error"] == (
                "provider_error: 21215"
            )
            assert events[0]["variables"]["call_queue_provider_call_id"] is None


async def test_busy_is_declined_and_a_rollback_leaves_no_event(
    engine: AsyncEngine,
) -> None:
    store, _ = await _store(engine)
    attempt = await store.enqueue(new_attempt())
    await _walk(store, attempt.id, S.DISPATCHING, S.INITIATED)
    try:
        async with store.transaction() as conn:
            await store.transition(conn, attempt.id, S.BUSY)
            raise RuntimeError("the status change is rolled back")
    except RuntimeError:
        pass
    assert [e["event"] for e in await list_events(engine, attempt.id)] == [
        "call_initiated"
    ]

    await _walk(store, attempt.id, S.BUSY)
    events = await list_events(engine, attempt.id)
    assert [e["event"] for e in events] == ["call_initiated", "call_declined"]
    assert events[1]["variables"]["call_queue_status"] == "busy"


async def test_the_controller_wrapped_by_the_recorder_fires_call_ended(
    engine: AsyncEngine,
) -> None:
    store, hooks = await _store(engine)
    controller = Controller(
        store, CampaignStore(engine), {}, media_urls={}, token_secret=b"secret"
    )
    observer = RecordingObserver(controller, engine, hooks)
    turns = [Turn(speaker="agent", text="Hi, this is Callwright.")]

    for carrier_first in (False, True):
        attempt = await store.enqueue(new_attempt(contact=f"c-{carrier_first}"))
        await _walk(store, attempt.id, S.DISPATCHING, S.INITIATED)
        await observer.call_answered(attempt.id, T0)
        if carrier_first:  # the carrier's "completed" beats the media report
            await _walk(store, attempt.id, S.COMPLETED)
        outcome = CallOutcome(
            call_id=attempt.id,
            conversation_id=attempt.id,
            started_at=T0,
            ended_at=T0 + dt.timedelta(seconds=3),
            end_type=EndType.AGENT_HANGUP,
            turns=turns,
        )
        await observer.call_ended(outcome)

        events = await list_events(engine, attempt.id)
        names = [e["event"] for e in events]
        assert names == ["call_initiated", "call_answered", "call_ended"], carrier_first
        ended = events[2]["variables"]
        assert (
            ended["conversation_turns_simplified"] == "Agent: Hi, this is Callwright."
        )
        assert ended["conversation_end_type"] == "agent_hangup"
        _assert_exact(events, await _deliveries(engine, attempt.id))


async def test_an_outcome_that_never_comes_is_swept_after_a_grace(
    engine: AsyncEngine,
) -> None:
    clock = _Clock()
    hooks = OutboxHooks(
        StaticCampaigns({"camp-1": every_event_campaign("http://127.0.0.1:9/")}),
        clock=clock,
    )
    store = QueueStore(engine, hooks=hooks, clock=clock)
    lost = await store.enqueue(new_attempt(contact="lost"))
    missed = await store.enqueue(new_attempt(contact="missed"))
    await _walk(store, lost.id, S.DISPATCHING, S.INITIATED, S.ANSWERED, S.COMPLETED)
    await _walk(store, missed.id, S.DISPATCHING, S.INITIATED, S.NO_ANSWER)

    assert await hooks.sweep_overdue(engine, grace_s=30) == 0  # too soon
    clock.now += dt.timedelta(seconds=60)
    assert await hooks.sweep_overdue(engine, grace_s=30) == 1
    assert await hooks.sweep_overdue(engine, grace_s=30) == 0  # once only

    events = await list_events(engine, lost.id)
    assert [e["event"] for e in events][-1] == "call_ended"
    ended = events[-1]["variables"]
    assert ended["conversation_turns"] == []
    assert ended["conversation_start_time"] is not None  # opened at the answer
    _assert_exact(events, await _deliveries(engine, lost.id))
    names = [e["event"] for e in await list_events(engine, missed.id)]
    assert names == ["call_initiated", "call_missed"]
