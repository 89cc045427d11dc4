"""`ApiBackend` over the real control plane: campaign repository and call queue.

Writes go through their owners: campaigns through the repository (which
versions them), call status through `QueueStore.transition` (which writes
history and lifecycle events). Lists of attempts (a filtered page, a
campaign's queued calls) are read from the attempt table here, because the
queue store has no filtered query; every read uses a read-only connection.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mediaserver import __version__
from mediaserver.api.checks import check_providers, sim_behavior_error
from mediaserver.api.schemas import (
    CallCreated,
    CallView,
    CampaignSummary,
    Canceled,
    Health,
    ImportReport,
    LaunchCall,
    RejectedRow,
    StatusChange,
)
from mediaserver.clock import Clock
from mediaserver.controller.campaign import Campaign, parse_campaign
from mediaserver.controller.csv_import import RowRejection, import_csv
from mediaserver.controller.launch import LaunchRequest, prepare_launch
from mediaserver.controller.status import CallStatus
from mediaserver.errors import ValidationError
from mediaserver.ids import new_id
from mediaserver.logs import mask_number
from mediaserver.store.campaigns import CampaignStore
from mediaserver.store.db import READ_ONLY
from mediaserver.store.queue import Attempt, NewAttempt, QueueStore
from mediaserver.store.queue_tables import call_attempts

logger = logging.getLogger(__name__)


SPOOL_IN_MEMORY = 1024 * 1024  # an upload beyond this is spooled to a temp file
# Rows parsed between two turns of the loop: parsing is CPU work that calls
# in progress share the loop with (50 rows: a few ms).
CSV_BATCH = 50


class CampaignReader:
    """Campaign reads with each stored version kept after its first read.

    The store's reads take no lock, so the controller may read a version
    while it holds a write transaction (to plan a retry). Versions never
    change once stored, so a version asked for by number is served from
    memory the second time; the latest version is always read from the
    store.
    """

    def __init__(self, campaigns: CampaignStore) -> None:
        self._campaigns = campaigns
        self._versions: dict[tuple[str, int], Campaign] = {}

    async def get(
        self, campaign_id: str, version: int | None = None
    ) -> Campaign | None:
        if version is not None and (campaign_id, version) in self._versions:
            return self._versions[(campaign_id, version)]
        campaign = await self._campaigns.get(campaign_id, version)
        if campaign is not None:
            self._versions[(campaign.id, campaign.version)] = campaign
        return campaign


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def call_view(attempt: Attempt, history: list[StatusChange] | None = None) -> CallView:
    """The API's picture of one attempt (the lease bookkeeping stays inside)."""
    return CallView(
        id=attempt.id,
        contact_id=attempt.contact_id,
        attempt_number=attempt.attempt_number,
        campaign_id=attempt.campaign_id,
        campaign_version=attempt.campaign_version,
        status=str(attempt.status),
        recipient_number=attempt.recipient_number,
        calling_number=attempt.calling_number,
        calling_number_id=attempt.calling_number_id,
        calling_number_provider=attempt.calling_number_provider,
        provider_call_id=attempt.provider_call_id,
        created_at=attempt.created_at,
        enqueued_at=attempt.enqueued_at,
        processing_started_at=attempt.processing_started_at,
        completed_at=attempt.completed_at,
        scheduled_for=attempt.scheduled_for,
        timezone=attempt.timezone,
        zone=attempt.zone,
        dynamic_variables=dict(attempt.dynamic_variables),
        metadata=dict(attempt.metadata),
        initiation_error=attempt.initiation_error,
        conversation_id=attempt.conversation_id,
        outcome=attempt.outcome,
        verdict=attempt.verdict,
        end_type=attempt.end_type,
        history=history,
    )


def new_attempt(
    launch: LaunchRequest, now: dt.datetime, contact_id: str | None = None
) -> NewAttempt:
    """The first queue row of a prepared launch."""
    calling = launch.calling_number
    if calling is None:  # prepare_launch always routes one
        raise ValidationError({"caller_id": "no calling number routed"})
    return NewAttempt(
        contact_id=contact_id or new_id(),
        campaign_id=launch.campaign_id,
        campaign_version=launch.campaign_version,
        recipient_number=launch.number,
        calling_number_id=calling.id,
        calling_number=calling.number,
        calling_number_provider=calling.provider,
        scheduled_for=launch.scheduled_for or now,
        dynamic_variables=dict(launch.variables),
        metadata=dict(launch.metadata),
        timezone=launch.timezone,
        source_row=launch.row,
    )


class ControlBackend:
    """The HTTP API's view of one controller node.

    `configured_providers` are the carriers that can dial here (a campaign
    naming another is refused; None: not checked); `sim_recordings_dirs`
    are where the simulated carrier finds recordings (None: only the
    behaviour's syntax is checked at launch).
    """

    def __init__(
        self,
        queue: QueueStore,
        campaigns: CampaignStore,
        *,
        on_enqueued: Callable[[], None] | None = None,
        media_listening: Callable[[], bool] | None = None,
        clock: Clock = _utcnow,
        configured_providers: Collection[str] | None = None,
        sim_recordings_dirs: Sequence[Path] | None = None,
    ) -> None:
        self._providers = configured_providers
        self._sim_dirs = sim_recordings_dirs
        self._queue = queue
        self._campaigns = campaigns
        self._reader = CampaignReader(campaigns)
        self._on_enqueued = on_enqueued or (lambda: None)
        self._media_listening = media_listening
        self._clock = clock

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A read that on SQLite does not take the write lock."""
        async with self._queue.engine.connect() as conn:
            yield await conn.execution_options(**{READ_ONLY: True})

    async def health(self) -> Health:
        try:
            async with self._reading() as conn:
                await conn.execute(sa.text("SELECT 1"))
            database = "ok"
        except Exception as exc:  # health reports, it does not raise
            database = type(exc).__name__
        media = "off"
        if self._media_listening is not None:
            media = "listening" if self._media_listening() else "down"
        healthy = database == "ok" and media != "down"
        return Health(
            status="ok" if healthy else "degraded",
            version=__version__,
            database=database,
            media=media,
        )

    # -- campaigns ---------------------------------------------------------

    async def create_campaign(self, body: Mapping[str, Any]) -> Campaign:
        campaign = parse_campaign(dict(body))
        check_providers(campaign, self._providers)
        return await self._campaigns.create(campaign)

    async def update_campaign(
        self,
        campaign_id: str,
        body: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> Campaign | None:
        data = dict(body)
        if data.pop("id", campaign_id) not in ("", campaign_id):
            raise ValidationError({"id": "does not match the campaign in the path"})
        # The path names the campaign; the store assigns the next version.
        data.pop("version", None)
        campaign = parse_campaign({**data, "id": campaign_id})
        check_providers(campaign, self._providers)
        if await self._reader.get(campaign_id) is None:
            return None
        return await self._campaigns.update(campaign, expected_version=expected_version)

    async def read_campaign(
        self, campaign_id: str, version: int | None = None
    ) -> Campaign | None:
        return await self._reader.get(campaign_id, version)

    async def list_campaigns(self, limit: int, offset: int) -> list[CampaignSummary]:
        # The store lists every campaign; campaigns are few next to calls.
        found = (await self._campaigns.list_campaigns())[offset : offset + limit]
        return [
            CampaignSummary(
                id=c.id, name=c.name, version=c.version, provider=c.provider
            )
            for c in found
        ]

    # -- calls -------------------------------------------------------------

    async def launch_call(self, request: LaunchCall) -> CallCreated | None:
        campaign = await self._reader.get(request.campaign_id)
        if campaign is None:
            return None
        launch = prepare_launch(
            campaign,
            request.number,
            request.variables,
            request.metadata,
            request.scheduled_for,
            request.timezone,
        )
        bad_behavior = sim_behavior_error(launch, self._sim_dirs)
        if bad_behavior:
            raise ValidationError(bad_behavior)
        attempt = await self._queue.enqueue(
            new_attempt(launch, self._clock(), request.contact_id)
        )
        logger.info(
            "call %s queued for %s",
            attempt.id,
            mask_number(attempt.recipient_number),
            extra={"call_id": attempt.id, "campaign_id": attempt.campaign_id},
        )
        self._on_enqueued()
        return CallCreated(
            id=attempt.id,
            contact_id=attempt.contact_id,
            status=str(attempt.status),
            scheduled_for=attempt.scheduled_for,
            zone=attempt.zone,
        )

    async def import_csv(
        self, campaign_id: str, chunks: AsyncIterator[bytes]
    ) -> ImportReport | None:
        campaign = await self._reader.get(campaign_id)
        if campaign is None:
            return None

        # The parser reads a file object row by row; the body is spooled so a
        # large upload sits on disk, not in memory.
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            async for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            late: list[RowRejection] = []  # rows the parser passed, refused here

            async def enqueue(launches: list[LaunchRequest]) -> None:
                await self._enqueue_batch(self._sim_checked(launches, late))

            report = await import_csv(spool, campaign, enqueue, batch_size=CSV_BATCH)

        accepted = report.accepted - len(late)
        if accepted:
            self._on_enqueued()
        rejected = sorted([*report.rejected, *late], key=lambda r: r.row)
        return ImportReport(
            campaign_id=campaign_id,
            rows=report.rows,
            accepted=accepted,
            rejected=[
                RejectedRow(row=r.row, reason=r.reason, errors=dict(r.errors))
                for r in rejected
            ],
            blank_rows=report.blank_rows,
            ignored_columns=list(report.ignored_columns),
            delimiter=report.delimiter,
            encoding=report.encoding,
        )

    def _sim_checked(
        self, launches: list[LaunchRequest], rejected: list[RowRejection]
    ) -> list[LaunchRequest]:
        """The launches whose simulated behaviour is good; the rest rejected."""
        good: list[LaunchRequest] = []
        for launch in launches:
            errors = sim_behavior_error(launch, self._sim_dirs)
            if not errors:
                good.append(launch)
                continue
            reason = "; ".join(f"{field}: {why}" for field, why in errors.items())
            rejected.append(
                RowRejection(row=launch.row or 0, reason=reason, errors=errors)
            )
        return good

    async def _enqueue_batch(self, launches: list[LaunchRequest]) -> None:
        if not launches:
            return
        now = self._clock()
        await self._queue.enqueue_many([new_attempt(item, now) for item in launches])

    async def list_calls(
        self, campaign_id: str | None, status: str | None, limit: int, offset: int
    ) -> list[CallView]:
        if status is not None and status not in {s.value for s in CallStatus}:
            known = ", ".join(s.value for s in CallStatus)
            raise ValidationError({"status": f"unknown status; one of {known}"})
        query = sa.select(call_attempts)
        if campaign_id is not None:
            query = query.where(call_attempts.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(call_attempts.c.status == status)
        query = query.order_by(
            call_attempts.c.created_at.desc(), call_attempts.c.id.desc()
        )
        async with self._reading() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).mappings()
            return [call_view(Attempt.from_row(row)) for row in rows]

    async def read_call(self, call_id: str) -> CallView | None:
        attempt = await self._queue.get(call_id)
        if attempt is None:
            return None
        history = [
            StatusChange(
                status=h.to_status, old_status=h.from_status, at=h.at, detail=h.detail
            )
            for h in await self._queue.history(call_id)
        ]
        return call_view(attempt, history)

    async def cancel_call(self, call_id: str) -> Canceled | None:
        attempt = await self._queue.get(call_id)
        if attempt is None:
            return None
        if attempt.status is not CallStatus.QUEUED:
            why = f"only a queued call can be canceled; this one is {attempt.status}"
            raise ValidationError({"status": why})
        async with self._queue.transaction() as conn:
            moved = await self._queue.transition(
                conn,
                call_id,
                CallStatus.CANCELED,
                detail="canceled by API",
                strict=False,
            )
        if moved is None:  # the dispatcher claimed it a moment ago
            raise ValidationError({"status": "the call left the queue while canceling"})
        return Canceled(canceled=1, ids=[call_id])

    async def cancel_campaign(self, campaign_id: str) -> Canceled | None:
        if await self._reader.get(campaign_id) is None:
            return None
        query = sa.select(call_attempts.c.id).where(
            call_attempts.c.campaign_id == campaign_id,
            call_attempts.c.status == CallStatus.QUEUED.value,
        )
        async with self._reading() as conn:
            ids = [row[0] for row in await conn.execute(query)]

        canceled: list[str] = []
        async with self._queue.transaction() as conn:
            for call_id in ids:
                moved = await self._queue.transition(
                    conn,
                    call_id,
                    CallStatus.CANCELED,
                    detail="campaign canceled by API",
                    strict=False,
                )
                if moved is not None:
                    canceled.append(call_id)
        logger.info("campaign %s: %d queued calls canceled", campaign_id, len(canceled))
        return Canceled(canceled=len(canceled), ids=canceled)
