"""The durable call queue: attempts, claiming, and the one way to change status.

Every status change goes through `QueueStore.transition` (or `claim`, which
changes many rows at once): the row is updated with a guard on its old
status, a history row is written, and `LifecycleHooks.on_transition` runs,
all in one transaction. Claiming is an atomic conditional UPDATE; on
PostgreSQL the candidate rows are picked with `FOR UPDATE SKIP LOCKED`, so
several nodes claim from one queue without waiting on each other.

Queueing applies the campaign's calling window: `scheduled_for` becomes the
later of the requested time and the window's next opening in the contact's
zone, and the zone used is stored, so closed-window calls wait in the queue
instead of being claimed and deferred one by one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mediaserver.controller.campaign import CallingWindow
from mediaserver.controller.hooks import LifecycleHooks, NoHooks
from mediaserver.controller.status import (
    ACTIVE,
    CallStatus,
    IllegalTransition,
    can_transition,
)
from mediaserver.controller.window import (
    Placement,
)
from mediaserver.store.db import READ_ONLY
from mediaserver.store.queue_placement import (
    enqueued_detail,
    placed_for,
    windows_for,
)
from mediaserver.store.queue_tables import call_attempts, call_status_history

_T = call_attempts
_Row = Mapping[Any, Any]  # a result row mapping
_H = call_status_history


class NewAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """What it takes to put one attempt on the queue."""

    contact_id: str
    campaign_id: str
    campaign_version: int
    recipient_number: str
    calling_number_id: str
    calling_number: str
    calling_number_provider: str
    scheduled_for: dt.datetime
    dynamic_variables: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    timezone: str | None = None
    source_row: int | None = None
    attempt_number: int = 1
    retry_of: str | None = None
    id: str | None = None
    # The campaign's window, when the caller has it; else the stored version's.
    calling_window: CallingWindow | None = None


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One call attempt as stored (the seed's call-queue fields and ours)."""

    id: str
    contact_id: str
    attempt_number: int
    retry_of: str | None
    campaign_id: str
    campaign_version: int
    status: CallStatus
    created_at: dt.datetime
    enqueued_at: dt.datetime
    scheduled_for: dt.datetime
    processing_started_at: dt.datetime | None
    completed_at: dt.datetime | None
    answered_at: dt.datetime | None
    calling_number_id: str
    calling_number: str
    calling_number_provider: str
    provider_call_id: str | None
    recipient_number: str
    timezone: str | None
    dynamic_variables: dict[str, Any]
    metadata: dict[str, Any]
    source_row: int | None
    initiation_error: str | None
    conversation_id: str | None
    outcome: str | None
    verdict: str | None
    end_type: str | None
    lease_owner: str | None
    lease_until: dt.datetime | None
    dial_intent_at: dt.datetime | None
    zone: str | None = None  # the zone the calling window was applied in

    @classmethod
    def from_row(cls, row: _Row) -> Attempt:
        return msgspec.convert({str(k): v for k, v in row.items()}, cls, strict=False)

    @property
    def terminal(self) -> bool:
        return self.status not in ACTIVE and self.status is not CallStatus.QUEUED


class StatusChange(msgspec.Struct, frozen=True, kw_only=True):
    attempt_id: str
    from_status: str | None
    to_status: str
    at: dt.datetime
    detail: str


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_last_ms = 0
_counter = 0


def ordered_id() -> str:
    """A time-ordered UUID (version 7 layout), so ids sort in enqueue order.

    Attempts due at the same moment are claimed by id: this keeps them in
    the order they were queued (a CSV's row order) within one process.
    """
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms, _counter = _last_ms, _counter + 1
        if _counter > 0xFFF:  # the 12-bit counter is spent: borrow the next ms
            ms, _counter = ms + 1, 0
    else:
        _counter = 0
    _last_ms = ms
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (_counter & 0xFFF) << 64
    value |= 0b10 << 62 | rand
    return str(uuid.UUID(int=value))


class QueueStore:
    """Reads and writes call attempts; the only writer of their status."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        hooks: LifecycleHooks | None = None,
        clock: Any = _utcnow,
    ) -> None:
        self.engine = engine
        self._hooks: LifecycleHooks = hooks or NoHooks()
        self._clock = clock
        self._skip_locked = engine.dialect.name == "postgresql"
        # SQLite has one writer: queueing our own writers here is cheaper than
        # letting them spin in SQLite's busy handler.
        self._write_lock = asyncio.Lock() if not self._skip_locked else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; every change to attempts happens in one."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield await conn.execution_options(**{READ_ONLY: True})

    # -- writing -----------------------------------------------------------

    async def enqueue(
        self, new: NewAttempt, *, conn: AsyncConnection | None = None
    ) -> Attempt:
        """Insert one queued attempt (in `conn`'s transaction if given)."""
        if conn is None:
            async with self.transaction() as own:
                return (await self.enqueue_many([new], conn=own))[0]
        return (await self.enqueue_many([new], conn=conn))[0]

    async def enqueue_many(
        self, items: Sequence[NewAttempt], *, conn: AsyncConnection | None = None
    ) -> list[Attempt]:
        if conn is None:
            async with self.transaction() as own:
                return await self.enqueue_many(items, conn=own)
        if not items:
            return []

        now = self._clock()
        windows = await windows_for(conn, items)
        placements: dict[tuple[Any, ...], Placement] = {}
        rows: list[dict[str, Any]] = []
        details: list[str] = []
        for item in items:
            row = _insert_values(item, now)
            window = windows[(item.campaign_id, item.campaign_version)]
            placed = placed_for(placements, window, item)
            row["scheduled_for"] = placed.scheduled_for
            row["zone"] = placed.zone
            rows.append(row)
            details.append(enqueued_detail(placed))
        await conn.execute(sa.insert(_T), rows)
        await self._record_many(conn, rows, None, CallStatus.QUEUED, now, details)
        return [Attempt.from_row(row) for row in rows]

    async def transition(
        self,
        conn: AsyncConnection,
        attempt_id: str,
        new: CallStatus,
        *,
        values: Mapping[str, Any] | None = None,
        detail: str = "",
        strict: bool = True,
        expect: CallStatus | None = None,
    ) -> Attempt | None:
        """Move one attempt to `new`, with history and hooks, in `conn`.

        An illegal change raises `IllegalTransition` when `strict`, else
        returns None and changes nothing (late or duplicate carrier news).
        `expect` is the status the caller believes the attempt has; when
        right, it saves reading the row first.
        """
        if expect is not None and can_transition(expect, new):
            moved = await self._update(conn, attempt_id, expect, new, values, detail)
            if moved is not None:
                return moved

        current = await self._locked(conn, attempt_id)
        if current is None:
            if strict:
                raise IllegalTransition(f"no attempt {attempt_id}")
            return None
        old = CallStatus(current["status"])
        if not can_transition(old, new):
            if strict:
                raise IllegalTransition(f"{old} -> {new} is not a legal status change")
            return None

        moved = await self._update(conn, attempt_id, old, new, values, detail)
        if moved is None and strict:  # changed under us: only without row locks
            raise IllegalTransition(f"{attempt_id} changed while moving to {new}")
        return moved

    async def _update(
        self,
        conn: AsyncConnection,
        attempt_id: str,
        old: CallStatus,
        new: CallStatus,
        values: Mapping[str, Any] | None,
        detail: str,
    ) -> Attempt | None:
        """The guarded write: only if the attempt is still in `old`."""
        now = self._clock()
        update: dict[str, Any] = {"status": new.value, **(values or {})}
        if new not in ACTIVE and new is not CallStatus.QUEUED:
            update.setdefault("completed_at", now)
            update.setdefault("lease_until", None)
        result = await conn.execute(
            sa.update(_T)
            .where(_T.c.id == attempt_id, _T.c.status == old.value)
            .values(update)
            .returning(*_T.c)
        )
        row = result.mappings().first()
        if row is None:
            return None
        await self._record(conn, row, old, new, now, detail)
        return Attempt.from_row(row)

    async def claim(
        self,
        campaign_id: str,
        *,
        owner: str,
        limit: int,
        lease_s: float,
    ) -> list[Attempt]:
        """Claim up to `limit` due attempts of one campaign for `owner`."""
        if limit <= 0:
            return []
        now = self._clock()
        pick = (
            sa.select(_T.c.id)
            .where(
                _T.c.status == CallStatus.QUEUED.value,
                _T.c.campaign_id == campaign_id,
                _T.c.scheduled_for <= now,
            )
            .order_by(_T.c.scheduled_for, _T.c.id)
            .limit(limit)
        )
        if self._skip_locked:
            pick = pick.with_for_update(skip_locked=True)

        async with self.transaction() as conn:
            result = await conn.execute(
                sa.update(_T)
                .where(
                    _T.c.id.in_(pick.scalar_subquery()),
                    _T.c.status == CallStatus.QUEUED.value,
                )
                .values(
                    status=CallStatus.DISPATCHING.value,
                    lease_owner=owner,
                    lease_until=now + dt.timedelta(seconds=lease_s),
                    processing_started_at=now,
                    dial_intent_at=None,
                )
                .returning(*_T.c)
            )
            rows = list(result.mappings())
            await self._record_many(
                conn, rows, CallStatus.QUEUED, CallStatus.DISPATCHING, now, owner
            )
        rows.sort(key=lambda r: (r["scheduled_for"], r["id"]))
        return [Attempt.from_row(row) for row in rows]

    async def release(
        self, attempt_id: str, scheduled_for: dt.datetime, detail: str
    ) -> Attempt | None:
        """Put a claimed, undialled attempt back on the queue for later."""
        async with self.transaction() as conn:
            return await self.transition(
                conn,
                attempt_id,
                CallStatus.QUEUED,
                values={
                    "scheduled_for": scheduled_for,
                    "lease_owner": None,
                    "lease_until": None,
                    "dial_intent_at": None,
                    "processing_started_at": None,
                },
                detail=detail,
                strict=False,
            )

    async def mark_dial_intent(
        self, attempt_ids: Collection[str], owner: str
    ) -> set[str]:
        """Record, durably, that we are about to dial; returns the ids still ours."""
        if not attempt_ids:
            return set()
        now = self._clock()
        async with self.transaction() as conn:
            result = await conn.execute(
                sa.update(_T)
                .where(
                    _T.c.id.in_(list(attempt_ids)),
                    _T.c.status == CallStatus.DISPATCHING.value,
                    _T.c.lease_owner == owner,
                )
                .values(dial_intent_at=now)
                .returning(_T.c.id)
            )
            return {r[0] for r in result}

    async def set_fields(
        self, conn: AsyncConnection, attempt_id: str, **values: Any
    ) -> None:
        """Change non-status fields (verdict, conversation id, ...)."""
        await conn.execute(sa.update(_T).where(_T.c.id == attempt_id).values(values))

    async def _locked(self, conn: AsyncConnection, attempt_id: str) -> _Row | None:
        query = sa.select(_T).where(_T.c.id == attempt_id)
        if self._skip_locked:
            query = query.with_for_update()
        return (await conn.execute(query)).mappings().first()

    async def _record(
        self,
        conn: AsyncConnection,
        row: _Row,
        old: CallStatus | None,
        new: CallStatus,
        at: dt.datetime,
        detail: str,
    ) -> None:
        await self._record_many(conn, [row], old, new, at, detail)

    async def _record_many(
        self,
        conn: AsyncConnection,
        rows: Sequence[_Row],
        old: CallStatus | None,
        new: CallStatus,
        at: dt.datetime,
        detail: str | Sequence[str],
    ) -> None:
        """History rows and hooks for one status change of many attempts.

        `detail` is one text for all, or one per row.
        """
        if not rows:
            return
        old_value = old.value if old else None
        texts = [detail] * len(rows) if isinstance(detail, str) else list(detail)
        history = [
            {
                "attempt_id": row["id"],
                "from_status": old_value,
                "to_status": new.value,
                "at": at,
                "detail": text,
            }
            for row, text in zip(rows, texts, strict=True)
        ]
        await conn.execute(sa.insert(_H), history)
        for row in rows:
            await self._hooks.on_transition(conn, dict(row), old_value, new.value)

    # -- reading -----------------------------------------------------------

    async def get(
        self, attempt_id: str, *, conn: AsyncConnection | None = None
    ) -> Attempt | None:
        query = sa.select(_T).where(_T.c.id == attempt_id)
        row = await self._first(query, conn)
        return Attempt.from_row(row) if row else None

    async def by_provider_call(
        self, provider: str, provider_call_id: str
    ) -> Attempt | None:
        query = sa.select(_T).where(
            _T.c.provider_call_id == provider_call_id,
            _T.c.calling_number_provider == provider,
        )
        row = await self._first(query, None)
        return Attempt.from_row(row) if row else None

    async def attempts_of(self, contact_id: str) -> list[Attempt]:
        query = (
            sa.select(_T)
            .where(_T.c.contact_id == contact_id)
            .order_by(_T.c.attempt_number)
        )
        return [Attempt.from_row(r) for r in await self._all(query)]

    async def all_attempts(self) -> list[Attempt]:
        query = sa.select(_T).order_by(_T.c.contact_id, _T.c.attempt_number)
        return [Attempt.from_row(r) for r in await self._all(query)]

    async def history(self, attempt_id: str) -> list[StatusChange]:
        query = (
            sa.select(_H.c.attempt_id, _H.c.from_status, _H.c.to_status, _H.c.at)
            .add_columns(_H.c.detail)
            .where(_H.c.attempt_id == attempt_id)
            .order_by(_H.c.id)
        )
        return [
            msgspec.convert({str(k): v for k, v in r.items()}, StatusChange)
            for r in await self._all(query)
        ]

    async def due_campaigns(self) -> list[str]:
        """Campaigns with at least one attempt due now."""
        query = (
            sa.select(_T.c.campaign_id)
            .where(
                _T.c.status == CallStatus.QUEUED.value,
                _T.c.scheduled_for <= self._clock(),
            )
            .distinct()
        )
        return [r["campaign_id"] for r in await self._all(query)]

    async def next_due_at(self) -> dt.datetime | None:
        query = sa.select(sa.func.min(_T.c.scheduled_for)).where(
            _T.c.status == CallStatus.QUEUED.value
        )
        async with self._reading() as conn:
            value: dt.datetime | None = (await conn.execute(query)).scalar()
        if value is not None and value.tzinfo is None:  # SQLite drops the zone
            value = value.replace(tzinfo=dt.UTC)
        return value

    async def active_counts(self) -> dict[str, int]:
        """Calls holding a slot, per campaign, across every node."""
        query = (
            sa.select(_T.c.campaign_id, sa.func.count().label("n"))
            .where(_T.c.status.in_([s.value for s in ACTIVE]))
            .group_by(_T.c.campaign_id)
        )
        return {r["campaign_id"]: int(r["n"]) for r in await self._all(query)}

    async def count_by_status(self) -> dict[str, int]:
        query = sa.select(_T.c.status, sa.func.count().label("n")).group_by(_T.c.status)
        return {r["status"]: int(r["n"]) for r in await self._all(query)}

    async def stale_dispatching(self, owner: str | None) -> list[Attempt]:
        """Attempts caught mid-dispatch: `owner`'s (it restarted) or expired."""
        stale = _T.c.lease_until < self._clock()
        if owner is not None:
            stale = sa.or_(_T.c.lease_owner == owner, stale)
        query = sa.select(_T).where(_T.c.status == CallStatus.DISPATCHING.value, stale)
        return [Attempt.from_row(r) for r in await self._all(query)]

    async def in_flight(self, owner: str) -> list[Attempt]:
        """Dialled attempts of `owner` whose call has not ended yet."""
        live = [CallStatus.INITIATED, CallStatus.RINGING, CallStatus.ANSWERED]
        query = sa.select(_T).where(
            _T.c.status.in_([s.value for s in live]), _T.c.lease_owner == owner
        )
        return [Attempt.from_row(r) for r in await self._all(query)]

    async def _first(
        self, query: sa.Select[Any], conn: AsyncConnection | None
    ) -> _Row | None:
        if conn is not None:
            row: _Row | None = (await conn.execute(query)).mappings().first()
            return row
        async with self._reading() as own:
            found: _Row | None = (await own.execute(query)).mappings().first()
            return found

    async def _all(self, query: sa.Select[Any]) -> list[_Row]:
        async with self._reading() as conn:
            return list((await conn.execute(query)).mappings())


def _insert_values(item: NewAttempt, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": item.id or ordered_id(),
        "contact_id": item.contact_id,
        "attempt_number": item.attempt_number,
        "retry_of": item.retry_of,
        "campaign_id": item.campaign_id,
        "campaign_version": item.campaign_version,
        "status": CallStatus.QUEUED.value,
        "created_at": now,
        "enqueued_at": now,
        "scheduled_for": item.scheduled_for,
        "processing_started_at": None,
        "completed_at": None,
        "answered_at": None,
        "calling_number_id": item.calling_number_id,
        "calling_number": item.calling_number,
        "calling_number_provider": item.calling_number_provider,
        "provider_call_id": None,
        "recipient_number": item.recipient_number,
        "timezone": item.timezone,
        "dynamic_variables": dict(item.dynamic_variables),
        "metadata": dict(item.metadata),
        "source_row": item.source_row,
        "initiation_error": None,
        "conversation_id": None,
        "outcome": None,
        "verdict": None,
        "end_type": None,
        "lease_owner": None,
        "lease_until": None,
        "dial_intent_at": None,
        "zone": None,
    }
