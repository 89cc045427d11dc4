"""The calling window is applied when a call is queued, and again at dispatch.

Before this, a call queued into a closed window was stored for "now", then
claimed, deferred and written twice more to history by every dispatcher
pass that reached it (about 26 rows a second on 50,000 uploaded rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.controller.campaign import CallingWindow
from mediaserver.controller.dispatcher import Dispatcher
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.store.campaigns import CampaignStore
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import Attempt, NewAttempt, QueueStore
from tests.controller.queue_support import FakeClock, RecordingDialer, campaign, launch

UTC = dt.UTC
NINE_TO_EIGHT = CallingWindow(start="09:00", end="20:00")
EVENING = dt.datetime(2026, 12, 8, 2, 0, tzinfo=UTC)  # Monday 21:00 in New York
NY_MORNING = dt.datetime(2026, 12, 8, 14, 0, tzinfo=UTC)  # Tuesday 09:00 there


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    yield engine
    await engine.dispose()


def _new(number: str, clock: FakeClock, **changes: object) -> NewAttempt:
    fields: dict[str, object] = {
        "contact_id": f"contact-{number}",
        "campaign_id": "camp-1",
        "campaign_version": 1,
        "recipient_number": number,
        "calling_number_id": "cn-1",
        "calling_number": "+12125550100",
        "calling_number_provider": "simulated",
        "scheduled_for": clock(),
    }
    fields.update(changes)
    return NewAttempt(**fields)  # type: ignore[arg-type]


async def test_queueing_uses_the_stored_campaign_window(engine: AsyncEngine) -> None:
    """The API's path: a plain NewAttempt, the window read from the campaign."""
    clock = FakeClock(EVENING)
    await CampaignStore(engine).create(campaign(calling_window=NINE_TO_EIGHT))
    queue = QueueStore(engine, clock=clock)

    ny, london, uk_mobile, toll_free, open_now = await queue.enqueue_many(
        [
            _new("+12125550123", clock),
            _new("+12125550124", clock, timezone="Europe/London"),
            _new("+447911123122", clock),  # four UK zones: no single zone
            _new("+18005550199", clock),  # every North American zone
            _new("+12125550125", clock, timezone="Asia/Tokyo"),  # 11:00 there
        ]
    )

    assert (ny.scheduled_for, ny.zone) == (NY_MORNING, "America/New_York")
    london_morning = dt.datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert (london.scheduled_for, london.zone) == (london_morning, "Europe/London")
    assert uk_mobile.scheduled_for == london_morning
    assert uk_mobile.zone is None
    assert toll_free.zone is None
    assert toll_free.scheduled_for > EVENING
    assert (open_now.scheduled_for, open_now.zone) == (EVENING, "Asia/Tokyo")

    # What enqueue answered is what was stored, with one history row each.
    stored = await queue.get(ny.id)
    assert stored is not None
    assert (stored.scheduled_for, stored.zone) == (NY_MORNING, "America/New_York")
    history = await queue.history(ny.id)
    assert [h.to_status for h in history] == ["queued"]
    assert "outside calling window until 2026-12-08T14:00Z" in history[0].detail
    assert (await queue.history(open_now.id))[0].detail == "enqueued"


async def test_a_later_requested_time_is_kept(engine: AsyncEngine) -> None:
    clock = FakeClock(EVENING)
    await CampaignStore(engine).create(campaign(calling_window=NINE_TO_EIGHT))
    queue = QueueStore(engine, clock=clock)
    noon = dt.datetime(2026, 12, 9, 17, 0, tzinfo=UTC)  # Wednesday 12:00 in NY
    (attempt,) = await queue.enqueue_many(
        [_new("+12125550123", clock, scheduled_for=noon)]
    )
    assert attempt.scheduled_for == noon


async def test_a_campaign_this_store_does_not_hold_keeps_the_time(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock(EVENING)
    queue = QueueStore(engine, clock=clock)
    (attempt,) = await queue.enqueue_many([_new("+12125550123", clock)])
    assert attempt.scheduled_for == EVENING  # the dispatcher still checks
    assert attempt.zone == "America/New_York"


async def test_closed_window_calls_are_not_churned(engine: AsyncEngine) -> None:
    clock = FakeClock(EVENING)
    camp = campaign(calling_window=NINE_TO_EIGHT, max_concurrent_calls=500)
    dialer = RecordingDialer()
    controller = Controller(
        QueueStore(engine, clock=clock),
        StaticCampaigns([camp]),
        {"simulated": dialer},
        media_urls={},
        token_secret=b"s" * 32,
        clock=clock,
    )
    attempts = await controller.enqueue(
        [launch(f"+1212555{i:04d}") for i in range(200)]
    )
    assert {a.scheduled_for for a in attempts} == {NY_MORNING}

    for _ in range(3):
        await controller.dispatcher.dispatch_once()
        await controller.dispatcher.drain()
    assert dialer.requests == []
    assert await controller.store.due_campaigns() == []
    assert await _history_rows(controller.store, attempts) == 200  # "enqueued" only

    clock.now = NY_MORNING
    for _ in range(40):  # a pass starts at most a burst (10 ms at 1000 cps)
        await controller.dispatcher.dispatch_once()
        await controller.dispatcher.drain()
        clock.advance(0.01)
    assert len(dialer.requests) == 200


async def test_a_window_that_closes_while_waiting_is_checked_at_dispatch(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock(dt.datetime(2026, 12, 8, 0, 59, tzinfo=UTC))  # 19:59 in NY
    camp = campaign(calling_window=NINE_TO_EIGHT)
    store = QueueStore(engine, clock=clock)
    dialer = RecordingDialer()
    controller = Controller(
        store,
        StaticCampaigns([camp]),
        {"simulated": dialer},
        media_urls={},
        token_secret=b"s" * 32,
        clock=clock,
    )
    (attempt,) = await controller.enqueue([launch("+12125550123")])
    assert attempt.scheduled_for == clock()

    clock.advance(120)  # 20:01: closed before anyone dialled it
    dispatcher: Dispatcher = controller.dispatcher
    await dispatcher.dispatch_once()
    await dispatcher.drain()
    assert dialer.requests == []
    stored = await store.get(attempt.id)
    assert stored is not None
    assert stored.status is CallStatus.QUEUED
    assert stored.scheduled_for == NY_MORNING


async def test_retries_land_inside_the_window(engine: AsyncEngine) -> None:
    clock = FakeClock(dt.datetime(2026, 12, 8, 0, 59, tzinfo=UTC))
    await CampaignStore(engine).create(campaign(calling_window=NINE_TO_EIGHT))
    queue = QueueStore(engine, clock=clock)
    (first,) = await queue.enqueue_many([_new("+12125550123", clock)])
    (retry,) = await queue.enqueue_many(
        [
            _new(
                "+12125550123",
                clock,
                attempt_number=2,
                retry_of=first.id,
                scheduled_for=clock() + dt.timedelta(minutes=30),  # 20:29 in NY
            )
        ]
    )
    assert retry.scheduled_for == NY_MORNING


async def _history_rows(store: QueueStore, attempts: list[Attempt]) -> int:
    total = 0
    for attempt in attempts:
        total += len(await store.history(attempt.id))
    return total
