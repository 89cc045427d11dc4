"""Tables of the lifecycle outbox, conversation records and call analyses.

`call_events` keeps every lifecycle event a call fired, numbered per call;
`webhook_deliveries` is the outbox: one row per action bound to an event,
written in the transaction of the status change that caused it, and
worked off by the delivery worker. `conversations` holds what the agent
runtime reported; `call_analyses` is the post-analysis work queue and its
results. Times are aware UTC, on SQLite too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.store.metadata import metadata
from mediaserver.store.queue_tables import UtcDateTime

_TS = UtcDateTime()

call_events = sa.Table(
    "call_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("campaign_id", sa.String(64)),
    sa.Column("variables", sa.JSON, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.UniqueConstraint("call_id", "sequence", name="uq_call_events_call_sequence"),
    sa.UniqueConstraint("call_id", "event", name="uq_call_events_call_event"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the signed webhook id
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("campaign_id", sa.String(64)),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("tool_name", sa.String(200), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # exact bytes signed and sent
    sa.Column("timeout_s", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending/delivered/failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _TS, nullable=False),
    sa.Column("lease_until", _TS),
    sa.Column("lease_token", sa.String(36)),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("delivered_at", _TS),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("conversation_id", sa.String(64), primary_key=True),
    sa.Column("call_id", sa.String(64), nullable=False, unique=True),
    sa.Column("campaign_id", sa.String(64)),
    sa.Column("started_at", _TS),
    sa.Column("ended_at", _TS),
    sa.Column("end_type", sa.String(32)),
    sa.Column("turns", sa.JSON, nullable=False),
    sa.Column("transcript", sa.Text, nullable=False, default=""),
    sa.Column("verdict", sa.JSON),
    sa.Column("error", sa.Text),
)

call_analyses = sa.Table(
    "call_analyses",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("call_id", sa.String(64), nullable=False, unique=True),
    sa.Column("conversation_id", sa.String(64)),
    sa.Column("campaign_id", sa.String(64)),
    sa.Column("template", sa.JSON, nullable=False),
    sa.Column("context", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending/done/failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _TS, nullable=False),
    sa.Column("lease_until", _TS),
    sa.Column("lease_token", sa.String(36)),
    sa.Column("result", sa.JSON),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("completed_at", _TS),
    sa.Index("ix_call_analyses_due", "status", "next_attempt_at"),
)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as aware UTC, whichever database returned it."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


async def claim_due(
    engine: AsyncEngine,
    table: sa.Table,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
) -> list[dict[str, Any]]:
    """Lease up to `limit` pending rows that are due; returns them.

    Works for `webhook_deliveries` and `call_analyses`. The rows are taken
    with one conditional UPDATE that stamps a fresh lease token, so two
    workers (or nodes) never both hold one; a lease left by a crash
    expires and the row is due again.
    """
    c = table.c
    free = sa.or_(c.lease_until.is_(None), c.lease_until < now)
    due = (
        sa.select(c.id)
        .where(c.status == "pending", c.next_attempt_at <= now, free)
        .order_by(c.next_attempt_at)
        .limit(limit)
    )
    token = str(uuid.uuid4())
    async with engine.begin() as conn:
        ids = [row_id for (row_id,) in (await conn.execute(due)).all()]
        if not ids:
            return []
        await conn.execute(
            table.update()
            .where(c.id.in_(ids), c.status == "pending", free)
            .values(lease_until=now + lease, lease_token=token)
        )
        taken = sa.select(table).where(c.id.in_(ids), c.lease_token == token)
        rows = (await conn.execute(taken.order_by(c.next_attempt_at))).mappings()
        return [{str(k): v for k, v in row.items()} for row in rows]
