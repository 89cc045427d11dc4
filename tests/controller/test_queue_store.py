"""The call queue store and status machine, on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection

from mediaserver.controller.status import (
    ALLOWED,
    TERMINAL,
    CallStatus,
    IllegalTransition,
    can_transition,
    check_transition,
)
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import NewAttempt, QueueStore
from tests.controller.queue_support import T0, FakeClock


class HookLog:
    """LifecycleHooks that write into the caller's transaction, and record."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str]] = []
        self.fail_on: str | None = None

    async def on_transition(
        self,
        conn: AsyncConnection,
        attempt: Mapping[str, Any],
        old_status: str | None,
        new_status: str,
    ) -> None:
        if new_status == self.fail_on:
            raise RuntimeError("hook refused")
        self.calls.append((attempt["id"], old_status, new_status))


def new_attempt(n: int = 1, **changes: Any) -> NewAttempt:
    fields: dict[str, Any] = {
        "id": f"a{n}",
        "contact_id": f"c{n}",
        "campaign_id": "camp-1",
        "campaign_version": 1,
        "recipient_number": "+12125550123",
        "calling_number_id": "cn-1",
        "calling_number": "+12125550100",
        "calling_number_provider": "simulated",
        "scheduled_for": T0,
        "dynamic_variables": {"name": "Ada"},
        "metadata": {"crm": 7},
    }
    fields.update(changes)
    return NewAttempt(**fields)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[QueueStore, HookLog, FakeClock]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    hooks = HookLog()
    clock = FakeClock()
    yield QueueStore(engine, hooks=hooks, clock=clock), hooks, clock
    await engine.dispose()


def test_machine_refuses_illegal_moves() -> None:
    check_transition(None, CallStatus.QUEUED)
    check_transition(CallStatus.QUEUED, CallStatus.DISPATCHING)
    check_transition(CallStatus.RINGING, CallStatus.ANSWERED)
    for bad in [
        (CallStatus.QUEUED, CallStatus.ANSWERED),
        (CallStatus.ANSWERED, CallStatus.RINGING),
        (CallStatus.ANSWERED, CallStatus.BUSY),
        (CallStatus.COMPLETED, CallStatus.QUEUED),
        (None, CallStatus.DISPATCHING),
    ]:
        with pytest.raises(IllegalTransition):
            check_transition(*bad)


def test_terminal_statuses_are_final() -> None:
    for status in TERMINAL:
        assert status not in ALLOWED
        assert not any(can_transition(status, other) for other in CallStatus)


async def test_enqueue_keeps_seed_fields_and_history(store: Any) -> None:
    queue, hooks, _clock = store
    (attempt,) = await queue.enqueue_many([new_attempt()])
    stored = await queue.get(attempt.id)

    assert stored is not None
    assert stored.status is CallStatus.QUEUED
    assert stored.scheduled_for == T0
    assert stored.scheduled_for.tzinfo is not None
    assert stored.dynamic_variables == {"name": "Ada"}
    assert stored.metadata == {"crm": 7}
    assert hooks.calls == [("a1", None, "queued")]
    history = await queue.history("a1")
    assert [(h.from_status, h.to_status) for h in history] == [(None, "queued")]


async def test_transition_writes_history_and_refuses_illegal(store: Any) -> None:
    queue, hooks, _clock = store
    await queue.enqueue(new_attempt())
    claimed = await queue.claim("camp-1", owner="n1", limit=5, lease_s=30)
    assert [a.id for a in claimed] == ["a1"]

    async with queue.transaction() as conn:
        moved = await queue.transition(
            conn, "a1", CallStatus.INITIATED, values={"provider_call_id": "P1"}
        )
    assert moved is not None
    assert moved.provider_call_id == "P1"
    async with queue.transaction() as conn:
        with pytest.raises(IllegalTransition):
            await queue.transition(conn, "a1", CallStatus.QUEUED)
    async with queue.transaction() as conn:
        assert (
            await queue.transition(conn, "a1", CallStatus.QUEUED, strict=False) is None
        )

    history = [(h.from_status, h.to_status) for h in await queue.history("a1")]
    assert history == [
        (None, "queued"),
        ("queued", "dispatching"),
        ("dispatching", "initiated"),
    ]
    assert [c[2] for c in hooks.calls] == ["queued", "dispatching", "initiated"]


async def test_a_failing_hook_rolls_the_change_back(store: Any) -> None:
    queue, hooks, _clock = store
    await queue.enqueue(new_attempt())
    await queue.claim("camp-1", owner="n1", limit=1, lease_s=30)
    hooks.fail_on = "initiated"

    with pytest.raises(RuntimeError):
        async with queue.transaction() as conn:
            await queue.transition(conn, "a1", CallStatus.INITIATED)

    stored = await queue.get("a1")
    assert stored is not None
    assert stored.status is CallStatus.DISPATCHING
    assert [h.to_status for h in await queue.history("a1")] == ["queued", "dispatching"]


async def test_claim_takes_only_due_rows_once(store: Any) -> None:
    queue, _hooks, clock = store
    later = T0.replace(hour=16)
    await queue.enqueue_many(
        [
            new_attempt(1),
            new_attempt(2),
            new_attempt(3, scheduled_for=later),
            new_attempt(4, campaign_id="other"),
        ]
    )

    first = await queue.claim("camp-1", owner="n1", limit=10, lease_s=30)
    again = await queue.claim("camp-1", owner="n2", limit=10, lease_s=30)
    assert sorted(a.id for a in first) == ["a1", "a2"]
    assert again == []
    assert all(a.lease_owner == "n1" for a in first)

    clock.now = later
    assert [
        a.id for a in await queue.claim("camp-1", owner="n2", limit=10, lease_s=30)
    ] == ["a3"]
    assert await queue.due_campaigns() == ["other"]


async def test_dial_intent_only_for_the_lease_owner(store: Any) -> None:
    queue, _hooks, _clock = store
    await queue.enqueue_many([new_attempt(1), new_attempt(2)])
    await queue.claim("camp-1", owner="n1", limit=1, lease_s=30)

    assert await queue.mark_dial_intent(["a1", "a2"], "n2") == set()
    assert await queue.mark_dial_intent(["a1", "a2"], "n1") == {"a1"}
    stored = await queue.get("a1")
    assert stored is not None
    assert stored.dial_intent_at is not None


async def test_retry_number_is_unique_per_contact(store: Any) -> None:
    queue, _hooks, _clock = store
    await queue.enqueue(new_attempt(1))
    with pytest.raises(Exception, match="UNIQUE"):
        await queue.enqueue(new_attempt(1, id="other-id"))
    assert len(await queue.attempts_of("c1")) == 1
