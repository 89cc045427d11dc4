"""The versioned campaign repository on a real SQLite file and on PostgreSQL.

PostgreSQL runs when CALLWRIGHT_PG_URL points at a reachable server (each
test in its own schema, dropped afterwards); otherwise it is skipped with
the reason, unless CALLWRIGHT_PG_REQUIRED is set, which makes it fail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.controller.campaign import Campaign, parse_campaign
from mediaserver.errors import StoreError, ValidationError
from mediaserver.store.campaigns import CampaignConflict, CampaignStore
from mediaserver.store.db import create_schema, drop_schema, make_engine


class StepClock:
    """Deterministic UTC time: each reading is one second after the last."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def _campaign(**changes: Any) -> Campaign:
    data: dict[str, Any] = {
        "id": "renewals",
        "name": "Renewals",
        "agent_url": "ws://127.0.0.1:9/agent",
        "caller_id": {"default": {"id": "main", "number": "+12125550100"}},
        "variables": [{"name": "customer_name", "required": True}],
    }
    data.update(changes)
    return parse_campaign(data)


async def _postgres_reachable(url: str) -> bool:
    from mediaserver.store.probe import _probe

    return await _probe(url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", f"sqlite+aiosqlite:///{tmp_path / 'campaigns.sqlite3'}"
        return
    url = os.environ.get("CALLWRIGHT_PG_URL", "")
    if not url:
        pytest.skip("CALLWRIGHT_PG_URL is not set: no PostgreSQL to test against")
    yield "postgres", url


@pytest_asyncio.fixture
async def engine(backend: tuple[str, str]) -> AsyncIterator[AsyncEngine]:
    kind, url = backend
    schema = None
    if kind == "postgres":
        plain = url.replace("postgresql+asyncpg://", "postgresql://")
        if not await _postgres_reachable(plain):
            if os.environ.get("CALLWRIGHT_PG_REQUIRED"):
                pytest.fail(f"PostgreSQL is required but not answering at {plain}")
            pytest.skip(f"PostgreSQL is not answering at {plain}")
        schema = f"cw_campaigns_{uuid.uuid4().hex[:12]}"
    eng = make_engine(url, schema=schema)
    await create_schema(eng, schema=schema)
    try:
        yield eng
    finally:
        if schema is not None:
            await drop_schema(eng, schema)
        await eng.dispose()


@pytest_asyncio.fixture
async def store(engine: AsyncEngine) -> CampaignStore:
    return CampaignStore(engine, clock=StepClock())


async def test_create_then_update_keeps_every_version(store: CampaignStore) -> None:
    first = await store.create(_campaign())
    assert first.version == 1
    assert first.caller_id.default.provider == "simulated"

    second = await store.update(msgspec.structs.replace(first, name="Renewals v2"))
    assert second.version == 2

    latest = await store.get("renewals")
    assert latest == second
    assert await store.get("renewals", 1) == first
    assert await store.get("renewals", 3) is None
    assert await store.get("nope") is None

    versions = await store.versions("renewals")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].created_at.tzinfo is not None
    assert versions[0].created_at < versions[1].created_at


async def test_empty_id_is_assigned(store: CampaignStore) -> None:
    created = await store.create(_campaign(id=""))
    assert created.id
    assert await store.get(created.id) == created


async def test_invalid_campaign_stores_nothing(store: CampaignStore) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.create(msgspec.structs.replace(_campaign(), max_concurrent_calls=0))
    assert list(caught.value.errors) == ["max_concurrent_calls"]
    assert await store.list_campaigns() == []

    await store.create(_campaign())
    bad = msgspec.structs.replace(_campaign(), agent_url="http://x/agent")
    with pytest.raises(ValidationError):
        await store.update(bad)
    assert [v.version for v in await store.versions("renewals")] == [1]


async def test_conflicts(store: CampaignStore) -> None:
    first = await store.create(_campaign())
    with pytest.raises(CampaignConflict):
        await store.create(_campaign())

    await store.update(first, expected_version=1)
    with pytest.raises(CampaignConflict):
        await store.update(first, expected_version=1)  # someone saved v2 first
    with pytest.raises(StoreError):
        await store.update(_campaign(id="missing"))
    assert [v.version for v in await store.versions("renewals")] == [1, 2]


async def test_concurrent_updates_each_get_their_own_version(
    store: CampaignStore,
) -> None:
    base = await store.create(_campaign())
    names = [f"Renewals {i}" for i in range(5)]
    saved = await asyncio.gather(
        *(store.update(msgspec.structs.replace(base, name=n)) for n in names)
    )
    assert sorted(c.version for c in saved) == [2, 3, 4, 5, 6]
    stored = [await store.get("renewals", v) for v in range(2, 7)]
    assert sorted(c.name for c in stored if c) == sorted(names)
    latest = await store.get("renewals")
    assert latest is not None
    assert latest.version == 6


async def test_concurrent_editors_of_one_version_one_wins(
    store: CampaignStore,
) -> None:
    base = await store.create(_campaign())
    results = await asyncio.gather(
        *(
            store.update(
                msgspec.structs.replace(base, name=f"E{i}"), expected_version=1
            )
            for i in range(4)
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, Campaign)]
    assert len(wins) == 1
    assert all(isinstance(r, CampaignConflict) for r in results if r not in wins)
    assert [v.version for v in await store.versions("renewals")] == [1, 2]


async def test_archive_hides_from_the_list_but_versions_stay(
    store: CampaignStore,
) -> None:
    await store.create(_campaign())
    await store.create(_campaign(id="other", name="Another"))
    assert [c.id for c in await store.list_campaigns()] == ["other", "renewals"]
    assert await store.archive("renewals")
    assert not await store.archive("renewals")
    assert await store.is_archived("renewals")
    assert [c.id for c in await store.list_campaigns()] == ["other"]
    assert len(await store.list_campaigns(include_archived=True)) == 2
    assert await store.get("renewals", 1) is not None


async def test_versions_survive_a_new_engine(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reopen.sqlite3'}"
    engine = make_engine(url)
    await create_schema(engine)
    created = await CampaignStore(engine).create(_campaign())
    await engine.dispose()

    engine = make_engine(url)
    try:
        assert await CampaignStore(engine).get("renewals", 1) == created
    finally:
        await engine.dispose()


async def test_actions_read_back_typed_in_a_transaction(
    store: CampaignStore, engine: AsyncEngine
) -> None:
    tool = {"name": "crm", "url": "http://127.0.0.1:9/hook"}
    await store.create(_campaign(actions=[{"event": "call_answered", "tool": tool}]))
    async with engine.connect() as conn:
        view = await store.campaign_for(conn, "renewals", 1)
        missing = await store.campaign_for(conn, "renewals", 9)
    assert missing is None
    assert view.actions[0].event == "call_answered"
    assert view.actions[0].tool.url == "http://127.0.0.1:9/hook"


async def test_reads_inside_a_writers_transaction_do_not_wait_on_it(
    store: CampaignStore, engine: AsyncEngine
) -> None:
    """A task holding a write transaction can still read campaigns.

    On SQLite a read that took the write lock would wait on the open writer
    (ourselves) until the busy timeout and then fail "database is locked".
    """
    from mediaserver.store.campaign_tables import campaigns

    created = await store.create(_campaign())
    async with engine.begin() as writer:
        await writer.execute(
            campaigns.update()
            .where(campaigns.c.id == created.id)
            .values(name=created.name)
        )
        assert await store.get(created.id) == created
        assert await store.get(created.id, 1) == created
        assert [c.id for c in await store.list_campaigns()] == [created.id]
        assert [v.version for v in await store.versions(created.id)] == [1]
        assert not await store.is_archived(created.id)
