"""The dispatcher and Controller over a real SQLite file, with a fake clock.

Passes are driven by hand (`dispatch_once`), so counts are deterministic
and nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest_asyncio

from mediaserver.amd.events import FinalActionKind
from mediaserver.amd.settings import AmdSettings
from mediaserver.controller.campaign import (
    CallerIdPolicy,
    CallingNumber,
    CallingWindow,
    Campaign,
    RetryPolicy,
)
from mediaserver.controller.dialer import CarrierEvent, CarrierStatus
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.plan import CallOutcome, EndType
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore
from tests.controller.queue_support import FakeClock, RecordingDialer, campaign, launch


class Rig:
    def __init__(
        self,
        controller: Controller,
        dialer: RecordingDialer,
        clock: FakeClock,
        campaigns: StaticCampaigns,
    ) -> None:
        self.controller = controller
        self.dialer = dialer
        self.clock = clock
        self.campaigns = campaigns
        self.store = controller.store

    async def run_pass(self) -> None:
        await self.controller.dispatcher.dispatch_once()
        await self.controller.dispatcher.drain()

    async def event(
        self, attempt_id: str, status: CarrierStatus, *, echo: bool = False
    ) -> None:
        """A callback for `attempt_id`, found by provider call id (or echoed id)."""
        await self.controller.carrier_event(
            CarrierEvent(
                provider="simulated",
                provider_call_id=f"P-{attempt_id}",
                status=status,
                at=self.clock(),
                call_id=attempt_id if echo else None,
            )
        )

    async def media_ended(self, attempt_id: str, end_type: str) -> None:
        """The media plane's report that the call ended, as the session sends it."""
        plan = await self.controller.plan_for(attempt_id)
        conversation_id = plan.conversation_id if plan else attempt_id
        now = self.clock()
        await self.controller.call_ended(
            CallOutcome(
                call_id=attempt_id,
                conversation_id=conversation_id,
                started_at=now,
                ended_at=now,
                end_type=end_type,
            )
        )

    async def statuses(self) -> list[str]:
        return [a.status.value for a in await self.store.all_attempts()]


@pytest_asyncio.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Any]:
    engines = []

    async def build(*camps: Campaign) -> Rig:
        engine = make_engine(f"sqlite:///{tmp_path / f'q{len(engines)}.sqlite3'}")
        engines.append(engine)
        await create_schema(engine)
        clock = FakeClock()
        campaigns = StaticCampaigns(camps or [campaign()])
        dialer = RecordingDialer()
        controller = Controller(
            QueueStore(engine, clock=clock),
            campaigns,
            {"simulated": dialer},
            media_urls={"simulated": "ws://127.0.0.1:9/media/twilio"},
            token_secret=b"s" * 32,
            clock=clock,
        )
        return Rig(controller, dialer, clock, campaigns)

    yield build
    for engine in engines:
        await engine.dispose()


async def test_concurrency_cap_and_slot_freed_on_end(make_rig: Any) -> None:
    rig = await make_rig(campaign(max_concurrent_calls=3))
    await rig.controller.enqueue([launch(f"+1212555{i:04d}") for i in range(10)])

    await rig.run_pass()
    await rig.run_pass()
    assert len(rig.dialer.requests) == 3

    first = rig.dialer.requests[0].call_id
    await rig.event(first, CarrierStatus.BUSY, echo=True)
    await rig.run_pass()
    assert len(rig.dialer.requests) == 4
    assert (await rig.store.active_counts())["camp-1"] == 3


async def test_calls_per_second_token_bucket(make_rig: Any) -> None:
    rig = await make_rig(campaign(calls_per_second=2.0, max_concurrent_calls=100))
    await rig.controller.enqueue([launch(f"+1212555{i:04d}") for i in range(10)])

    await rig.run_pass()
    assert len(rig.dialer.requests) == 1  # a burst of one: calls are spaced
    await rig.run_pass()
    assert len(rig.dialer.requests) == 1
    rig.clock.advance(0.25)
    await rig.run_pass()
    assert len(rig.dialer.requests) == 1  # half a token
    rig.clock.advance(0.25)
    await rig.run_pass()
    assert len(rig.dialer.requests) == 2
    rig.clock.advance(2.0)
    await rig.run_pass()
    await rig.run_pass()
    assert len(rig.dialer.requests) == 3  # an idle pause saves up no burst


async def test_scheduled_for_is_honoured(make_rig: Any) -> None:
    rig = await make_rig()
    later = rig.clock() + dt.timedelta(minutes=5)
    await rig.controller.enqueue([launch(scheduled_for=later)])

    await rig.run_pass()
    assert rig.dialer.requests == []
    rig.clock.now = later
    await rig.run_pass()
    assert len(rig.dialer.requests) == 1


async def test_outside_window_is_deferred_not_dropped(make_rig: Any) -> None:
    rig = await make_rig(
        campaign(calling_window=CallingWindow(start="09:00", end="20:00"))
    )
    rig.clock.now = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)  # 21:00 in New York
    (attempt,) = await rig.controller.enqueue([launch("+12125550123")])

    await rig.run_pass()
    assert rig.dialer.requests == []
    stored = await rig.store.get(attempt.id)
    assert stored is not None
    assert stored.status is CallStatus.QUEUED
    assert stored.scheduled_for == dt.datetime(2026, 12, 8, 14, 0, tzinfo=dt.UTC)
    history = await rig.store.history(attempt.id)
    assert "outside calling window" in history[-1].detail

    rig.clock.now = stored.scheduled_for
    await rig.run_pass()
    assert [r.call_id for r in rig.dialer.requests] == [attempt.id]


async def test_dial_request_carries_token_and_numbers(make_rig: Any) -> None:
    rig = await make_rig()
    (attempt,) = await rig.controller.enqueue([launch("+12125550123")])
    await rig.run_pass()

    (request,) = rig.dialer.requests
    assert request.call_id == attempt.id
    assert request.to_number == "+12125550123"
    assert request.from_number == "+12125550100"
    assert request.media_token.startswith(attempt.id + ".")
    stored = await rig.store.get(attempt.id)
    assert stored is not None
    assert stored.status is CallStatus.INITIATED
    assert stored.provider_call_id == f"P-{attempt.id}"


async def test_late_and_duplicate_callbacks_change_nothing(make_rig: Any) -> None:
    rig = await make_rig()
    (attempt,) = await rig.controller.enqueue([launch()])
    await rig.run_pass()
    cid = attempt.id

    for status in (
        CarrierStatus.ANSWERED,
        CarrierStatus.RINGING,
        CarrierStatus.ANSWERED,
        CarrierStatus.COMPLETED,
        CarrierStatus.COMPLETED,
        CarrierStatus.BUSY,
    ):
        await rig.event(cid, status)
    history = [h.to_status for h in await rig.store.history(cid)]
    assert history == ["queued", "dispatching", "initiated", "answered", "completed"]


async def test_retries_cap_across_triggers_and_keep_caller_number(
    make_rig: Any,
) -> None:
    retrying = campaign(
        retry=RetryPolicy(
            on_busy=True, on_no_answer=True, on_declined=True, max_retries=2, delay_s=60
        )
    )
    rig = await make_rig(retrying)
    (first,) = await rig.controller.enqueue([launch()])
    # Caller ID changes after the first attempt; retries keep the first number.
    rig.campaigns.add(
        msgspec.structs.replace(
            retrying,
            version=2,
            caller_id=CallerIdPolicy(
                default=CallingNumber(
                    id="cn-2", number="+12125550999", provider="simulated"
                )
            ),
        )
    )

    endings = [CarrierStatus.BUSY, CarrierStatus.NO_ANSWER, CarrierStatus.DECLINED]
    for ending in endings:
        await rig.run_pass()
        call_id = rig.dialer.requests[-1].call_id
        await rig.event(call_id, ending, echo=True)
        rig.clock.advance(59)
        await rig.run_pass()
        rig.clock.advance(1)

    attempts = await rig.store.attempts_of(first.contact_id)
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert [a.status.value for a in attempts] == ["busy", "no_answer", "declined"]
    assert {r.from_number for r in rig.dialer.requests} == {"+12125550100"}
    assert attempts[1].scheduled_for - attempts[0].completed_at == dt.timedelta(
        seconds=60
    )
    assert len(rig.dialer.requests) == 3


async def test_failed_is_not_retried(make_rig: Any) -> None:
    rig = await make_rig(
        campaign(
            retry=RetryPolicy(
                on_busy=True, on_no_answer=True, on_declined=True, max_retries=3
            )
        )
    )
    (first,) = await rig.controller.enqueue([launch()])
    await rig.run_pass()
    await rig.event(first.id, CarrierStatus.FAILED)
    assert len(await rig.store.attempts_of(first.contact_id)) == 1


async def test_plan_and_media_observer(make_rig: Any) -> None:
    amd = AmdSettings(
        initial_check_delay_ms=1500, final_action=FinalActionKind.END_CALL
    )
    rig = await make_rig(
        campaign(amd=amd, opening_script="Hi {{name}}", max_concurrent_calls=1)
    )
    first, second = await rig.controller.enqueue(
        [launch(variables={"name": "Ada"}), launch("+12125550124")]
    )
    await rig.run_pass()

    plan = await rig.controller.plan_for(first.id)
    assert plan is not None
    assert plan.amd == amd
    assert plan.variables == {"name": "Ada"}
    assert plan.opening_script == "Hi {{name}}"
    assert plan.conversation_id

    await rig.controller.call_answered(first.id, rig.clock())
    await rig.media_ended(first.id, EndType.USER_HANGUP)
    stored = await rig.store.get(first.id)
    assert stored is not None
    assert stored.status is CallStatus.COMPLETED
    assert stored.end_type == "user_hangup"
    assert await rig.controller.plan_for(first.id) is None

    await rig.run_pass()  # the slot is free again
    assert [r.call_id for r in rig.dialer.requests] == [first.id, second.id]


async def test_no_media_plan_for_a_call_not_yet_dialled(make_rig: Any) -> None:
    rig = await make_rig(campaign())
    (attempt,) = await rig.controller.enqueue([launch()])

    # Queued, not dialled: a valid media token alone must not open a call.
    assert await rig.controller.plan_for(attempt.id) is None

    await rig.run_pass()
    assert await rig.controller.plan_for(attempt.id) is not None


async def test_media_outcome_after_carrier_completed_keeps_end_type(
    make_rig: Any,
) -> None:
    rig = await make_rig(campaign())
    (attempt,) = await rig.controller.enqueue([launch()])
    await rig.run_pass()
    await rig.controller.call_answered(attempt.id, rig.clock())

    # The carrier's "completed" wins the race with the media plane's report.
    await rig.event(attempt.id, CarrierStatus.COMPLETED)
    await rig.media_ended(attempt.id, EndType.VOICEMAIL_ENDED)

    stored = await rig.store.get(attempt.id)
    assert stored is not None
    assert stored.status is CallStatus.COMPLETED
    assert stored.end_type == "voicemail_ended"


async def test_our_side_ending_hangs_up_the_carrier_leg(make_rig: Any) -> None:
    rig = await make_rig(campaign())
    ours, theirs = await rig.controller.enqueue([launch(), launch("+12125550124")])
    await rig.run_pass()
    for attempt, end_type in (
        (ours, EndType.AGENT_HANGUP),
        (theirs, EndType.USER_HANGUP),
    ):
        await rig.controller.call_answered(attempt.id, rig.clock())
        await rig.media_ended(attempt.id, end_type)

    # The callee hanging up needs no hangup from us; our own ending does.
    assert rig.dialer.hangups == [f"P-{ours.id}"]


async def test_unknown_provider_fails_initiation(make_rig: Any) -> None:
    rig = await make_rig(
        campaign(
            caller_id=CallerIdPolicy(
                default=CallingNumber(id="x", number="+12125550100", provider="telnyx")
            )
        )
    )
    (attempt,) = await rig.controller.enqueue([launch()])
    await rig.run_pass()
    stored = await rig.store.get(attempt.id)
    assert stored is not None
    assert stored.status is CallStatus.INITIATION_FAILED
    assert "no dialer for provider telnyx" in (stored.initiation_error or "")


class RefuseOne:
    """LifecycleHooks that refuse one attempt's `initiated` (a broken hook)."""

    def __init__(self) -> None:
        self.refused: str | None = None

    async def on_transition(
        self, conn: Any, attempt: Any, old_status: str | None, new_status: str
    ) -> None:
        if new_status == "initiated" and attempt["id"] == self.refused:
            raise RuntimeError("hook refused")


async def test_one_refused_write_does_not_hold_back_the_batch(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    clock = FakeClock()
    hooks = RefuseOne()
    dialer = RecordingDialer()
    controller = Controller(
        QueueStore(engine, clock=clock, hooks=hooks),
        StaticCampaigns([campaign()]),
        {"simulated": dialer},
        media_urls={},
        token_secret=b"s" * 32,
        clock=clock,
    )
    attempts = await controller.enqueue([launch(f"+1212555000{i}") for i in range(5)])
    hooks.refused = attempts[2].id

    await controller.dispatcher.dispatch_once()
    await controller.dispatcher.drain()
    await controller.stop()

    statuses = [(await controller.store.get(a.id)) for a in attempts]
    assert [s.status.value for s in statuses if s] == [
        "initiated",
        "initiated",
        "dispatching",
        "initiated",
        "initiated",
    ]
    assert len(dialer.requests) == 5
    await engine.dispose()
