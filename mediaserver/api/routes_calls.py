"""Call routes: launch one call, list and read attempts, cancel one."""

from __future__ import annotations

from litestar import Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody

from mediaserver.api.auth import SECURITY
from mediaserver.api.backend import Backend
from mediaserver.api.bodies import json_body_guard
from mediaserver.api.params import (
    BODY_ERRORS,
    COMMON_ERRORS,
    NOT_FOUND,
    Limit,
    Offset,
)
from mediaserver.api.schemas import (
    CallCreated,
    CallPage,
    CallView,
    Canceled,
    LaunchCall,
)


@post(
    "/",
    status_code=201,
    summary="Launch a call",
    description=(
        "Queues the first attempt of a contact. 422 names each bad field, for "
        "example a required variable that is missing (`variables.customer_name`)."
    ),
    before_request=json_body_guard,
    responses={**COMMON_ERRORS, **BODY_ERRORS, **NOT_FOUND},
)
async def launch_call(data: JSONBody[LaunchCall], backend: Backend) -> CallCreated:
    created = await backend.launch_call(data)
    if created is None:
        raise NotFoundException(f"no campaign {data.campaign_id!r}")
    return created


@get("/", summary="List call attempts, newest first", responses=COMMON_ERRORS)
async def list_calls(
    backend: Backend,
    campaign_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CallPage:
    items = await backend.list_calls(campaign_id, status, limit + 1, offset)
    more = len(items) > limit
    return CallPage(
        items=items[:limit],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@get(
    "/{call_id:str}",
    summary="Read a call attempt with its status history",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def read_call(call_id: FromPath[str], backend: Backend) -> CallView:
    found = await backend.read_call(call_id)
    if found is None:
        raise NotFoundException(f"no call {call_id!r}")
    return found


@post(
    "/{call_id:str}/cancel",
    status_code=200,
    summary="Cancel a queued call",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def cancel_call(call_id: FromPath[str], backend: Backend) -> Canceled:
    canceled = await backend.cancel_call(call_id)
    if canceled is None:
        raise NotFoundException(f"no call {call_id!r}")
    return canceled


call_router = Router(
    path="/calls",
    route_handlers=[launch_call, list_calls, read_call, cancel_call],
    security=SECURITY,
    tags=["calls"],
)
