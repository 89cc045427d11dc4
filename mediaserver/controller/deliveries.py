"""The outbox as the API shows it: deliveries, replay, a call's events.

Failed deliveries stay in the outbox with their last error; `replay_delivery`
queues one again with the same webhook id and body, so receivers that
deduplicate on the id stay correct.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.clock import Clock, utc_now
from mediaserver.store.outbox_tables import aware, call_events, webhook_deliveries

log = logging.getLogger(__name__)


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook delivery as the API shows it."""

    id: str
    event_id: str
    call_id: str
    sequence: int
    event: str
    campaign_id: str | None
    tool_name: str
    method: str
    url: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: dt.datetime
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    input: Any


def _view(row: Mapping[Any, Any]) -> DeliveryView:
    return DeliveryView(
        id=row["id"],
        event_id=row["event_id"],
        call_id=row["call_id"],
        sequence=row["sequence"],
        event=row["event"],
        campaign_id=row["campaign_id"],
        tool_name=row["tool_name"],
        method=row["method"],
        url=row["url"],
        status=row["status"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        next_attempt_at=aware(row["next_attempt_at"]) or row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=aware(row["created_at"]) or row["created_at"],
        delivered_at=aware(row["delivered_at"]),
        input=msgspec.json.decode(row["body"]),
    )


async def list_deliveries(
    engine: AsyncEngine,
    *,
    status: str | None = "failed",
    call_id: str | None = None,
    campaign_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DeliveryView]:
    """Deliveries, newest first; by default the failed ones."""
    query = sa.select(webhook_deliveries)
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    if call_id is not None:
        query = query.where(webhook_deliveries.c.call_id == call_id)
    if campaign_id is not None:
        query = query.where(webhook_deliveries.c.campaign_id == campaign_id)
    query = query.order_by(
        webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query.limit(limit).offset(offset))
        return [_view(row) for row in rows.mappings()]


async def get_delivery(engine: AsyncEngine, delivery_id: str) -> DeliveryView | None:
    query = sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return _view(row) if row is not None else None


async def replay_delivery(
    engine: AsyncEngine, delivery_id: str, *, clock: Clock = utc_now
) -> bool:
    """Queue a failed delivery again, with the same id and body.

    Returns False when there is no failed delivery with that id.
    """
    query = (
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.status == "failed",
        )
        .values(status="pending", attempts=0, next_attempt_at=clock(), lease_until=None)
    )
    async with engine.begin() as conn:
        result = await conn.execute(query)
    replayed = bool(result.rowcount)
    if replayed:
        log.info("webhook delivery %s queued again", delivery_id)
    return replayed


async def list_events(engine: AsyncEngine, call_id: str) -> list[dict[str, Any]]:
    """A call's lifecycle events in order, with their variables."""
    query = (
        sa.select(call_events)
        .where(call_events.c.call_id == call_id)
        .order_by(call_events.c.sequence)
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [{str(k): v for k, v in row.items()} for row in rows.mappings()]
