"""The lifecycle outbox: events written in the transaction that caused them.

`OutboxHooks` implements the queue's `LifecycleHooks`: each status change
that fires a lifecycle event writes one `call_events` row (numbered per
call) and one `webhook_deliveries` row per action bound to that event, on
the same connection, so a rolled-back status change leaves no event and a
committed one cannot lose it. The delivery worker (`delivery.py`) sends
the rows later; nothing here touches the network.

The call-ended event needs the conversation record, which the media plane
reports on its own schedule: whichever comes second, the status change
that ends an answered call or the record (`OutboxHooks.call_ended`, or
`RecordingObserver` around the controller), fires it, once.

What the API shows of the outbox (failed deliveries, replay, a call's
events) is in `deliveries.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mediaserver.amd.events import Verdict
from mediaserver.clock import Clock, utc_now
from mediaserver.controller.actions import (
    Action,
    PostAnalysisTemplate,
    Tool,
    build_input,
    resolve_actions,
    resolve_template,
)
from mediaserver.controller.conversation import (
    load_conversation,
    store_outcome,
    store_start,
)
from mediaserver.controller.events import (
    LifecycleEvent,
    analysis_context,
    event_for_transition,
    variables_for,
)
from mediaserver.errors import ValidationError
from mediaserver.ids import new_id
from mediaserver.plan import CallObserver, CallOutcome
from mediaserver.store.outbox_tables import (
    call_analyses,
    call_events,
    webhook_deliveries,
)
from mediaserver.store.queue_tables import call_attempts

log = logging.getLogger(__name__)


class CampaignActions(Protocol):
    """Finds a campaign version's actions and post-analysis template."""

    async def campaign_for(
        self, conn: AsyncConnection, campaign_id: str, version: int | None
    ) -> Any | None:
        """An object with `actions` and `post_analysis`, or None."""
        ...


class StaticCampaigns:
    """Campaigns held in memory by id (tests, the demo, a fixed config)."""

    def __init__(self, campaigns: Mapping[str, Any]) -> None:
        self._campaigns = dict(campaigns)

    async def campaign_for(
        self, conn: AsyncConnection, campaign_id: str, version: int | None
    ) -> Any | None:
        return self._campaigns.get(campaign_id)


class OutboxHooks:
    """`LifecycleHooks` that write lifecycle events into the outbox."""

    def __init__(
        self,
        campaigns: CampaignActions,
        *,
        tools: Mapping[str, Tool] | None = None,
        clock: Clock = utc_now,
        max_attempts: int = 8,
        analysis_attempts: int = 3,
    ) -> None:
        self._campaigns = campaigns
        self._tools = dict(tools or {})
        self._clock = clock
        self._max_attempts = max_attempts
        self._analysis_attempts = analysis_attempts

    async def on_transition(
        self,
        conn: AsyncConnection,
        attempt: Mapping[str, Any],
        old_status: str | None,
        new_status: str,
    ) -> None:
        event = event_for_transition(old_status, new_status)
        if event is None:
            return
        attempt = {**attempt, "status": new_status}

        conversation: Mapping[str, Any] | None = None
        if event is LifecycleEvent.CALL_ANSWERED:
            # The answer starts the conversation, whether or not the media
            # plane has said so yet.
            started = attempt.get("answered_at") or self._clock()
            conversation = await store_start(conn, attempt, started)
        elif event is LifecycleEvent.CALL_ENDED:
            conversation = await load_conversation(conn, str(attempt["id"]))
            if conversation is None or conversation.get("ended_at") is None:
                return  # the record's arrival (call_ended) fires it
        await self.fire(conn, event, attempt, conversation)

    async def call_ended(
        self,
        conn: AsyncConnection,
        outcome: CallOutcome,
        attempt: Mapping[str, Any],
    ) -> None:
        """Store the media plane's outcome, in the caller's transaction.

        `attempt` is the attempt row as it stands; if its status has already
        ended the answered call, this fires call-ended.
        """
        await store_outcome(conn, outcome, attempt.get("campaign_id"))
        await self.conversation_recorded(conn, attempt)

    async def conversation_recorded(
        self, conn: AsyncConnection, attempt: Mapping[str, Any]
    ) -> None:
        """Fire call-ended if the attempt's status already ended the call."""
        status = attempt.get("status")
        if status != "completed":
            if status not in ("failed", "canceled"):
                return  # still running: the status change will fire it
            call_id = str(attempt["id"])
            if not await _has_event(conn, call_id, LifecycleEvent.CALL_ANSWERED):
                return  # it never connected: no conversation ended
        conversation = await load_conversation(conn, str(attempt["id"]))
        await self.fire(conn, LifecycleEvent.CALL_ENDED, attempt, conversation)

    async def sweep_overdue(
        self,
        engine: AsyncEngine,
        *,
        grace_s: float = 120.0,
        horizon_s: float = 86400.0,
    ) -> int:
        """Fire call-ended for answered calls whose record never came.

        A media node that dies mid-call never reports the outcome; once the
        attempt has been over for `grace_s`, the event goes out with what
        is known (no turns). Returns how many were fired.
        """
        now = self._clock()
        a, e = call_attempts.c, call_events.c

        def has(event: LifecycleEvent) -> sa.Exists:
            return sa.exists().where(e.call_id == a.id, e.event == event.value)

        query = sa.select(call_attempts).where(
            a.completed_at < now - dt.timedelta(seconds=grace_s),
            a.completed_at > now - dt.timedelta(seconds=horizon_s),
            sa.or_(
                a.status == "completed",
                sa.and_(
                    a.status.in_(("failed", "canceled")),
                    has(LifecycleEvent.CALL_ANSWERED),
                ),
            ),
            ~has(LifecycleEvent.CALL_ENDED),
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=call_attempts)
        fired = 0
        async with engine.begin() as conn:
            for row in (await conn.execute(query)).mappings().all():
                attempt = {str(k): v for k, v in row.items()}
                conversation = await load_conversation(conn, attempt["id"])
                if await self.fire(
                    conn, LifecycleEvent.CALL_ENDED, attempt, conversation
                ):
                    fired += 1
        if fired:
            log.warning("fired call-ended for %d calls whose outcome never came", fired)
        return fired

    async def run_sweeps(self, engine: AsyncEngine, every_s: float = 30.0) -> None:
        """`sweep_overdue` every `every_s` seconds until cancelled."""
        while True:
            try:
                await self.sweep_overdue(engine)
            except Exception:  # the store may come back; keep sweeping
                log.exception("sweeping overdue call endings failed")
            await asyncio.sleep(every_s)

    async def fire(
        self,
        conn: AsyncConnection,
        event: LifecycleEvent,
        attempt: Mapping[str, Any],
        conversation: Mapping[str, Any] | None,
    ) -> str | None:
        """Write the event and its deliveries; None if it already fired."""
        call_id = str(attempt["id"])
        fired = await _fired(conn, call_id)
        if event.value in fired:
            return None
        now = self._clock()
        campaign_id = attempt.get("campaign_id")
        variables = _json_safe(variables_for(event, attempt, conversation))
        sequence = max(fired.values(), default=0) + 1
        event_id = new_id()
        await conn.execute(
            call_events.insert().values(
                id=event_id,
                call_id=call_id,
                sequence=sequence,
                event=event.value,
                campaign_id=attempt.get("campaign_id"),
                variables=variables,
                created_at=now,
            )
        )

        campaign = await self._campaign(conn, attempt)
        actions, faults = resolve_actions(campaign, self._tools)
        if faults:  # saved campaigns were validated; say so if one slipped by
            log.warning("campaign %s has unusable actions: %s", campaign_id, faults)
        for index, action in actions.items():
            if action.event == event.value:
                await self._enqueue_delivery(
                    conn, event_id, sequence, event, index, action, variables, attempt
                )
        if event is LifecycleEvent.CALL_ENDED:
            template = _template(campaign)
            if template is not None:
                await self._enqueue_analysis(conn, attempt, conversation, template)
        log.info(
            "lifecycle event %s #%d for call %s",
            event.value,
            sequence,
            call_id,
            extra={"call_id": call_id, "campaign_id": attempt.get("campaign_id")},
        )
        return event_id

    async def _campaign(
        self, conn: AsyncConnection, attempt: Mapping[str, Any]
    ) -> Any | None:
        campaign_id = attempt.get("campaign_id")
        if not campaign_id:
            return None
        version = attempt.get("campaign_version")
        return await self._campaigns.campaign_for(
            conn, str(campaign_id), int(version) if version is not None else None
        )

    async def _enqueue_delivery(
        self,
        conn: AsyncConnection,
        event_id: str,
        sequence: int,
        event: LifecycleEvent,
        index: int,
        action: Action,
        variables: dict[str, Any],
        attempt: Mapping[str, Any],
    ) -> None:
        # A value that cannot be sent must not undo the status change: the
        # delivery is filed as failed, with the reason, for someone to see.
        status, error = "pending", None
        try:
            body = msgspec.json.encode(build_input(action, variables)).decode()
        except (msgspec.EncodeError, TypeError, ValueError) as exc:
            status, error, body = "failed", f"could not build the input: {exc}", "{}"
            log.error("action %d of %s: %s", index, event.value, error)
        now = self._clock()
        await conn.execute(
            webhook_deliveries.insert().values(
                id=new_id(),
                event_id=event_id,
                call_id=str(attempt["id"]),
                sequence=sequence,
                event=event.value,
                campaign_id=attempt.get("campaign_id"),
                action_index=index,
                tool_name=action.tool.name,
                method=action.tool.method.upper(),
                url=action.tool.url,
                headers=dict(action.tool.headers),
                body=body,
                timeout_s=action.tool.timeout_s,
                status=status,
                last_error=error,
                attempts=0,
                max_attempts=self._max_attempts,
                next_attempt_at=now,
                created_at=now,
            )
        )

    async def _enqueue_analysis(
        self,
        conn: AsyncConnection,
        attempt: Mapping[str, Any],
        conversation: Mapping[str, Any] | None,
        template: PostAnalysisTemplate,
    ) -> None:
        now = self._clock()
        await conn.execute(
            call_analyses.insert().values(
                id=new_id(),
                call_id=str(attempt["id"]),
                conversation_id=(conversation or {}).get("conversation_id"),
                campaign_id=attempt.get("campaign_id"),
                template=msgspec.to_builtins(template),
                context=analysis_context(attempt, conversation),
                status="pending",
                attempts=0,
                max_attempts=self._analysis_attempts,
                next_attempt_at=now,
                created_at=now,
            )
        )


class RecordingObserver:
    """A `CallObserver` that files the conversation record, then passes on.

    Wrap the controller with it where the media server gets its observer:
    the record is stored before the controller ends the attempt, so the
    status change finds it and call-ended carries the turns; when the
    carrier's "completed" came first, the record's arrival fires it.
    """

    def __init__(self, inner: CallObserver, engine: AsyncEngine, hooks: OutboxHooks):
        self._inner = inner
        self._engine = engine
        self._hooks = hooks

    async def call_answered(self, call_id: str, at: dt.datetime) -> None:
        await self._inner.call_answered(call_id, at)

    async def call_verdict(self, call_id: str, verdict: Verdict) -> None:
        await self._inner.call_verdict(call_id, verdict)

    async def call_ended(self, outcome: CallOutcome) -> None:
        async with self._engine.begin() as conn:
            attempt = await _attempt(conn, outcome.call_id)
            campaign_id = attempt.get("campaign_id") if attempt else None
            await store_outcome(conn, outcome, campaign_id)

        await self._inner.call_ended(outcome)

        async with self._engine.begin() as conn:
            attempt = await _attempt(conn, outcome.call_id)
            if attempt is not None:
                await self._hooks.conversation_recorded(conn, attempt)


async def _attempt(conn: AsyncConnection, call_id: str) -> dict[str, Any] | None:
    """The attempt row, locked like the queue locks it for a status change,
    so a carrier callback and this cannot both fire call-ended."""
    query = sa.select(call_attempts).where(call_attempts.c.id == call_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return {str(k): v for k, v in row.items()} if row is not None else None


def _json_safe(variables: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON values; one that has no JSON form becomes its text."""
    safe: dict[str, Any] = {}
    for name, value in variables.items():
        try:
            safe[name] = msgspec.to_builtins(value)
        except (TypeError, msgspec.EncodeError):
            log.warning("variable %s has no JSON form; sent as text", name)
            safe[name] = repr(value)
    return safe


def _template(campaign: Any) -> PostAnalysisTemplate | None:
    try:
        return resolve_template(campaign)
    except ValidationError as exc:
        log.warning("unusable post-analysis template: %s", exc)
        return None


async def _has_event(
    conn: AsyncConnection, call_id: str, event: LifecycleEvent
) -> bool:
    query = sa.select(call_events.c.id).where(
        call_events.c.call_id == call_id, call_events.c.event == event.value
    )
    return (await conn.execute(query)).first() is not None


async def _fired(conn: AsyncConnection, call_id: str) -> dict[str, int]:
    """The events a call has fired so far, with their sequence numbers."""
    query = sa.select(call_events.c.event, call_events.c.sequence).where(
        call_events.c.call_id == call_id
    )
    return {event: seq for event, seq in (await conn.execute(query)).all()}
