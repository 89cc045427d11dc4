"""Routes of the actions part: webhook deliveries, lifecycle events,
conversations and post-call analyses.

`actions_router(engine)` is mounted by `create_app` next to the call and
campaign routers; it sits behind the API key like them. Failed deliveries
are listed and replayed here; a replay keeps the webhook id, so receivers
that dedupe on it stay correct.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.api.auth import SECURITY
from mediaserver.api.params import COMMON_ERRORS, NOT_FOUND, Limit, Offset
from mediaserver.controller.analysis import AnalysisView, get_analysis, retry_analysis
from mediaserver.controller.conversation import ConversationView, get_conversation
from mediaserver.controller.deliveries import (
    DeliveryView,
    get_delivery,
    list_deliveries,
    list_events,
    replay_delivery,
)
from mediaserver.store.queue_tables import call_attempts


class DeliveryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeliveryView]
    limit: int
    offset: int
    next_offset: int | None


class Requeued(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str = "pending"


class EventView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    call_id: str
    sequence: int
    event: str
    variables: dict[str, Any]


async def _call_exists(engine: AsyncEngine, call_id: str) -> bool:
    query = sa.select(call_attempts.c.id).where(call_attempts.c.id == call_id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).first() is not None


def actions_router(engine: AsyncEngine) -> Router:
    """The routes, bound to the database the outbox lives in."""

    @get(
        "/webhooks/deliveries",
        summary="List webhook deliveries, newest first (failed ones by default)",
        responses=COMMON_ERRORS,
    )
    async def deliveries(
        status: FromQuery[str | None] = "failed",
        call_id: FromQuery[str | None] = None,
        campaign_id: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DeliveryPage:
        items = await list_deliveries(
            engine,
            status=status or None,
            call_id=call_id,
            campaign_id=campaign_id,
            limit=limit + 1,
            offset=offset,
        )
        more = len(items) > limit
        return DeliveryPage(
            items=items[:limit],
            limit=limit,
            offset=offset,
            next_offset=offset + limit if more else None,
        )

    @get(
        "/webhooks/deliveries/{delivery_id:str}",
        summary="Read one delivery",
        responses={**COMMON_ERRORS, **NOT_FOUND},
    )
    async def delivery(delivery_id: FromPath[str]) -> DeliveryView:
        found = await get_delivery(engine, delivery_id)
        if found is None:
            raise NotFoundException(f"no delivery {delivery_id!r}")
        return found

    @post(
        "/webhooks/deliveries/{delivery_id:str}/replay",
        status_code=202,
        summary="Send a failed delivery again, with the same webhook id and body",
        responses={**COMMON_ERRORS, **NOT_FOUND},
    )
    async def replay(delivery_id: FromPath[str]) -> Requeued:
        if not await replay_delivery(engine, delivery_id):
            raise NotFoundException(f"no failed delivery {delivery_id!r}")
        return Requeued(id=delivery_id)

    @get(
        "/events/{call_id:str}",
        summary="A call's lifecycle events, in order",
        responses={**COMMON_ERRORS, **NOT_FOUND},
    )
    async def events(call_id: FromPath[str]) -> list[EventView]:
        rows = await list_events(engine, call_id)
        if not rows and not await _call_exists(engine, call_id):
            raise NotFoundException(f"no call {call_id!r}")
        return [msgspec.convert(row, EventView) for row in rows]

    @get(
        "/conversations/{conversation_id:str}",
        summary="A conversation record: times, end type, turns, transcript",
        responses={**COMMON_ERRORS, **NOT_FOUND},
    )
    async def conversation(conversation_id: FromPath[str]) -> ConversationView:
        found = await get_conversation(engine, conversation_id)
        if found is None:
            raise NotFoundException(f"no conversation {conversation_id!r}")
        return found

    @get(
        "/analyses/{call_id:str}",
        summary="A call's post-analysis and its state",
        responses={**COMMON_ERRORS, **NOT_FOUND},
    )
    async def analysis(call_id: FromPath[str]) -> AnalysisView:
        found = await get_analysis(engine, call_id)
        if found is None:
            raise NotFoundException(f"no analysis for call {call_id!r}")
        return found

    @post(
        "/analyses/{call_id:str}/retry",
        status_code=202,
        summary="Run a failed post-analysis again",
        responses={**COMMON_ERRORS, **NOT_FOUND},
    )
    async def retry(call_id: FromPath[str]) -> Requeued:
        if not await retry_analysis(engine, call_id):
            raise NotFoundException(f"no failed analysis for call {call_id!r}")
        return Requeued(id=call_id)

    return Router(
        path="/",
        route_handlers=[
            deliveries,
            delivery,
            replay,
            events,
            conversation,
            analysis,
            retry,
        ],
        security=SECURITY,
        tags=["actions"],
    )
