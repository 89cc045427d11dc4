"""Where a new attempt goes in time: the calling window applied at enqueue.

`scheduled_for` becomes the later of the requested time and the window's
next opening in the contact's zone; results are remembered per batch,
because a CSV's rows mostly share window, time and zones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mediaserver.controller.campaign import CallingWindow
from mediaserver.controller.window import (
    Placement,
    Window,
    applied_zone_names,
    place,
)
from mediaserver.store.campaign_tables import campaign_versions

if TYPE_CHECKING:
    from mediaserver.store.queue import NewAttempt

Key = tuple[str, int]


async def windows_for(
    conn: AsyncConnection, items: Sequence[NewAttempt]
) -> dict[Key, Window | None]:
    """Each campaign version's calling window: the item's, else the stored one."""
    found: dict[Key, Window | None] = {}
    for item in items:
        key = (item.campaign_id, item.campaign_version)
        if key in found:
            continue
        spec = item.calling_window or await stored_window(conn, *key)
        window = Window.from_spec(spec) if spec is not None else None
        found[key] = window if window is not None and window.days else None
    return found


async def stored_window(
    conn: AsyncConnection, campaign_id: str, version: int
) -> CallingWindow | None:
    """The saved version's window; None if the campaign is not in this store."""
    query = sa.select(campaign_versions.c.body).where(
        campaign_versions.c.campaign_id == campaign_id,
        campaign_versions.c.version == version,
    )
    body = (await conn.execute(query)).scalar_one_or_none()
    if not isinstance(body, Mapping):
        return None
    try:  # a missing block is the campaign default, as when it was read
        return msgspec.convert(body.get("calling_window") or {}, CallingWindow)
    except msgspec.ValidationError:
        return None


def placed_for(
    memo: dict[tuple[Any, ...], Placement], window: Window | None, item: NewAttempt
) -> Placement:
    """`place`, remembered per batch: a CSV's rows share window, time and zones."""
    names = applied_zone_names(item.recipient_number, item.timezone)
    key = (window, item.scheduled_for, names)
    placed = memo.get(key)
    if placed is None:
        if window is None:  # no window known here; the dispatcher still checks
            zone = names[0] if len(names) == 1 else None
            placed = Placement(
                scheduled_for=item.scheduled_for, zone=zone, deferred=False
            )
        else:
            placed = place(window, item.scheduled_for, names)
        memo[key] = placed
    return placed


def enqueued_detail(placed: Placement) -> str:
    if not placed.deferred:
        return "enqueued"
    return (
        f"enqueued; outside calling window until {placed.scheduled_for:%Y-%m-%dT%H:%M}Z"
    )
