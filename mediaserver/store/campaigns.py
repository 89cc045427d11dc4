"""The campaign repository: validated saves, every update a new version.

`create` stores version 1; `update` stores the next version and moves the
campaign's latest pointer with a compare-and-set, so two concurrent
updates cannot both win. `get` reads the latest version unless one is
asked for; old versions are never changed or deleted, because attempts
record the version they were launched with.

Reads never take a lock: on SQLite they open a plain (deferred) `BEGIN`
instead of the writers' `BEGIN IMMEDIATE`, so a read issued while the
same task holds a write transaction on another connection does not wait
on itself until the busy timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mediaserver.clock import Clock
from mediaserver.clock import utc_now as _utc_now
from mediaserver.controller.campaign import (
    Campaign,
    actions_view,
    campaign_to_builtins,
    validate_campaign,
)
from mediaserver.errors import StoreError
from mediaserver.ids import new_id
from mediaserver.store.campaign_tables import campaign_versions, campaigns
from mediaserver.store.db import READ_ONLY

logger = logging.getLogger(__name__)


class CampaignConflict(StoreError):
    """The campaign changed since the version the caller read (or exists)."""


class CampaignVersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    created_at: dt.datetime


class CampaignStore:
    """Campaigns over an AsyncEngine (SQLite file or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def create(self, campaign: Campaign) -> Campaign:
        """Validate and store version 1; an empty id gets a new one.

        Raises:
            ValidationError: the campaign is invalid; nothing is stored.
            CampaignConflict: a campaign with this id exists.
        """
        campaign = validate_campaign(campaign)
        campaign = msgspec.structs.replace(
            campaign, id=campaign.id or new_id(), version=1
        )
        now = self._clock()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    campaigns.insert().values(
                        id=campaign.id,
                        name=campaign.name,
                        latest_version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await self._insert_version(conn, campaign, now)
        except sa.exc.IntegrityError as exc:
            raise CampaignConflict(f"campaign {campaign.id} already exists") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"storing campaign {campaign.id} failed: {exc}") from exc
        logger.info("campaign created", extra={"campaign_id": campaign.id})
        return campaign

    async def update(
        self, campaign: Campaign, *, expected_version: int | None = None
    ) -> Campaign:
        """Validate and store the next version of an existing campaign.

        With `expected_version`, the update applies only if that is still
        the latest version (optimistic locking for editors).

        Raises:
            ValidationError: the campaign is invalid; nothing is stored.
            CampaignConflict: someone saved a newer version first.
            StoreError: no campaign has this id.
        """
        campaign = validate_campaign(campaign)
        now = self._clock()
        try:
            async with self._engine.begin() as conn:
                latest = await self._latest_version(conn, campaign.id)
                if expected_version is not None and expected_version != latest:
                    raise CampaignConflict(
                        f"campaign {campaign.id} is at version {latest}, "
                        f"not {expected_version}"
                    )
                campaign = msgspec.structs.replace(campaign, version=latest + 1)
                await self._move_latest(conn, campaign, latest, now)
                await self._insert_version(conn, campaign, now)
        except sa.exc.IntegrityError as exc:
            raise CampaignConflict(
                f"campaign {campaign.id} was updated concurrently"
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"updating campaign {campaign.id} failed: {exc}") from exc
        logger.info(
            "campaign updated to version %d",
            campaign.version,
            extra={"campaign_id": campaign.id},
        )
        return campaign

    async def get(
        self,
        campaign_id: str,
        version: int | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> Campaign | None:
        """The latest version, or `version`; None when there is no such one.

        Pass `conn` to read inside a caller's transaction.
        """
        query = sa.select(campaign_versions.c.body).where(
            campaign_versions.c.campaign_id == campaign_id
        )
        if version is None:
            query = query.join(
                campaigns,
                sa.and_(
                    campaigns.c.id == campaign_versions.c.campaign_id,
                    campaigns.c.latest_version == campaign_versions.c.version,
                ),
            )
        else:
            query = query.where(campaign_versions.c.version == version)

        body = await self._scalar(query, conn)
        return None if body is None else _decode(body)

    async def campaign_for(
        self, conn: AsyncConnection, campaign_id: str, version: int | None
    ) -> Any | None:
        """A version's typed actions and post-analysis template (the outbox's
        `CampaignActions`), read in the caller's transaction."""
        campaign = await self.get(campaign_id, version, conn=conn)
        return None if campaign is None else actions_view(campaign)

    async def list_campaigns(self, *, include_archived: bool = False) -> list[Campaign]:
        """The latest version of every campaign, by name."""
        query = (
            sa.select(campaign_versions.c.body)
            .join(
                campaigns,
                sa.and_(
                    campaigns.c.id == campaign_versions.c.campaign_id,
                    campaigns.c.latest_version == campaign_versions.c.version,
                ),
            )
            .order_by(campaigns.c.name, campaigns.c.id)
        )
        if not include_archived:
            query = query.where(campaigns.c.archived_at.is_(None))
        async with self._reading() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [_decode(body) for body in rows]

    async def versions(self, campaign_id: str) -> list[CampaignVersionInfo]:
        """Every stored version of a campaign, oldest first."""
        query = (
            sa.select(campaign_versions.c.version, campaign_versions.c.created_at)
            .where(campaign_versions.c.campaign_id == campaign_id)
            .order_by(campaign_versions.c.version)
        )
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
        return [
            CampaignVersionInfo(version=row.version, created_at=_aware(row.created_at))
            for row in rows
        ]

    async def archive(self, campaign_id: str) -> bool:
        """Stop new launches of a campaign; False when it does not exist."""
        query = (
            campaigns.update()
            .where(campaigns.c.id == campaign_id, campaigns.c.archived_at.is_(None))
            .values(archived_at=self._clock())
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def is_archived(self, campaign_id: str) -> bool:
        query = sa.select(campaigns.c.archived_at).where(campaigns.c.id == campaign_id)
        return await self._scalar(query, None) is not None

    async def _latest_version(self, conn: AsyncConnection, campaign_id: str) -> int:
        # FOR UPDATE (PostgreSQL) queues concurrent updates of one campaign;
        # SQLite's BEGIN IMMEDIATE already has.
        query = (
            sa.select(campaigns.c.latest_version)
            .where(campaigns.c.id == campaign_id)
            .with_for_update()
        )
        latest = (await conn.execute(query)).scalar_one_or_none()
        if latest is None:
            raise StoreError(f"no campaign {campaign_id}")
        return int(latest)

    async def _move_latest(
        self, conn: AsyncConnection, campaign: Campaign, old: int, now: dt.datetime
    ) -> None:
        # Compare-and-set: of two concurrent updates from `old`, one moves it.
        query = (
            campaigns.update()
            .where(campaigns.c.id == campaign.id, campaigns.c.latest_version == old)
            .values(latest_version=campaign.version, name=campaign.name, updated_at=now)
        )
        result = await conn.execute(query)
        if result.rowcount != 1:
            raise CampaignConflict(f"campaign {campaign.id} was updated concurrently")

    async def _insert_version(
        self, conn: AsyncConnection, campaign: Campaign, now: dt.datetime
    ) -> None:
        await conn.execute(
            campaign_versions.insert().values(
                campaign_id=campaign.id,
                version=campaign.version,
                body=campaign_to_builtins(campaign),
                created_at=now,
            )
        )

    async def _scalar(self, query: Any, conn: AsyncConnection | None) -> Any:
        if conn is not None:
            return (await conn.execute(query)).scalar_one_or_none()
        async with self._reading() as own:
            return (await own.execute(query)).scalar_one_or_none()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only: no write lock is taken on SQLite."""
        async with self._engine.connect() as conn:
            yield await conn.execution_options(**{READ_ONLY: True})


def _decode(body: Any) -> Campaign:
    """Stored versions were valid when saved; read them back as they were."""
    return msgspec.convert(body, Campaign)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
