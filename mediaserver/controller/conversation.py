"""The conversation record: when it ran, how it ended, and what was said.

A record is opened when the call is answered (`store_start`) and closed
with the media plane's `CallOutcome` (`store_outcome`): start and end time,
end type, the agent runtime's turns and a readable transcript. The
call-ended event carries the turns as a JSON array and the transcript as
`conversation_turns_simplified`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mediaserver.plan import CallOutcome, Turn
from mediaserver.store.outbox_tables import aware, conversations

_SPEAKERS = {"agent": "Agent", "user": "User"}


class ConversationView(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    call_id: str
    campaign_id: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_type: str | None
    turns: list[dict[str, Any]]
    transcript: str
    verdict: dict[str, Any] | None
    error: str | None


def simplify(turns: Sequence[Turn]) -> str:
    """One line per turn, `Agent: ...` / `User: ...`, blank turns dropped."""
    lines = []
    for turn in turns:
        text = " ".join(turn.text.split())
        if text:
            who = _SPEAKERS.get(turn.speaker, turn.speaker.capitalize() or "Unknown")
            lines.append(f"{who}: {text}")
    return "\n".join(lines)


def _row(row: Mapping[Any, Any]) -> dict[str, Any]:
    record = {str(key): value for key, value in row.items()}
    record["started_at"] = aware(record["started_at"])
    record["ended_at"] = aware(record["ended_at"])
    return record


async def load_conversation(
    conn: AsyncConnection, call_id: str
) -> dict[str, Any] | None:
    """The conversation of one call attempt, or None."""
    query = sa.select(conversations).where(conversations.c.call_id == call_id)
    row = (await conn.execute(query)).mappings().first()
    return _row(row) if row is not None else None


async def store_start(
    conn: AsyncConnection, attempt: Mapping[str, Any], at: dt.datetime
) -> dict[str, Any]:
    """Open the attempt's record at the answer, unless it is open already."""
    call_id = str(attempt["id"])
    existing = await load_conversation(conn, call_id)
    if existing is not None:
        return existing
    conversation_id = attempt.get("conversation_id") or call_id
    await conn.execute(
        conversations.insert().values(
            conversation_id=str(conversation_id),
            call_id=call_id,
            campaign_id=attempt.get("campaign_id"),
            started_at=at,
            turns=[],
            transcript="",
        )
    )
    return {
        "conversation_id": str(conversation_id),
        "call_id": call_id,
        "started_at": at,
        "ended_at": None,
        "end_type": None,
        "turns": [],
        "transcript": "",
    }


async def store_outcome(
    conn: AsyncConnection, outcome: CallOutcome, campaign_id: str | None = None
) -> dict[str, Any]:
    """Close the record with what the media plane reported; returns it."""
    turns = [msgspec.to_builtins(turn) for turn in outcome.turns]
    values: dict[str, Any] = {
        "started_at": outcome.started_at,
        "ended_at": outcome.ended_at,
        "end_type": outcome.end_type,
        "turns": turns,
        "transcript": simplify(outcome.turns),
        "verdict": msgspec.to_builtins(outcome.verdict) if outcome.verdict else None,
        "error": outcome.error,
    }
    existing = await load_conversation(conn, outcome.call_id)
    if existing is None:
        await conn.execute(
            conversations.insert().values(
                conversation_id=outcome.conversation_id,
                call_id=outcome.call_id,
                campaign_id=campaign_id,
                **values,
            )
        )
    else:
        await conn.execute(
            conversations.update()
            .where(conversations.c.call_id == outcome.call_id)
            .values(**values)
        )
    record = await load_conversation(conn, outcome.call_id)
    assert record is not None
    return record


async def get_conversation(
    engine: AsyncEngine, conversation_id: str
) -> ConversationView | None:
    """A conversation by its id, as the API shows it."""
    query = sa.select(conversations).where(
        conversations.c.conversation_id == conversation_id
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return msgspec.convert(_row(row), ConversationView) if row is not None else None


async def conversation_for_call(
    engine: AsyncEngine, call_id: str
) -> ConversationView | None:
    async with engine.connect() as conn:
        record = await load_conversation(conn, call_id)
    return msgspec.convert(record, ConversationView) if record is not None else None
