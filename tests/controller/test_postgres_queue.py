"""The queue on a real PostgreSQL server: SKIP LOCKED claims, two nodes, one queue.

Needs CALLWRIGHT_PG_URL (e.g. postgresql://postgres@127.0.0.1:5432/test);
each test builds a fresh schema and drops it afterwards. Without a server
the tests skip, unless CALLWRIGHT_PG_REQUIRED=1 makes that a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio

from mediaserver.store.db import make_engine
from mediaserver.store.queue import QueueStore
from tests.controller import test_crash_restart as crash
from tests.controller.queue_support import FakeClock
from tests.controller.test_queue_store import new_attempt
from tests.postgres_support import fresh_schema, pg_url

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def url() -> str:
    return pg_url()


@pytest_asyncio.fixture
async def schema(url: str) -> AsyncIterator[str]:
    async with fresh_schema(url, "cw_queue_") as name:
        yield name


async def test_concurrent_claims_never_overlap(url: str, schema: str) -> None:
    engines = [make_engine(url, schema=schema) for _ in range(2)]
    stores = [QueueStore(e, clock=FakeClock()) for e in engines]
    await stores[0].enqueue_many([new_attempt(i) for i in range(60)])

    async def claim_all(store: QueueStore, owner: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim("camp-1", owner=owner, limit=7, lease_s=30):
            got += [a.id for a in batch]
        return got

    first, second = await asyncio.gather(
        claim_all(stores[0], "n1"), claim_all(stores[1], "n2")
    )
    for engine in engines:
        await engine.dispose()

    assert not set(first) & set(second)
    assert len(first) + len(second) == 60


async def test_two_node_processes_share_one_queue(
    url: str, schema: str, tmp_path: Path
) -> None:
    # Pacing is per node, so at 8 dials a second neither node can do it all alone.
    camp = msgspec.structs.replace(
        crash.CRASH_CAMPAIGN, max_concurrent_calls=50, calls_per_second=8.0
    )
    await crash.seed(url, schema, camp)

    nodes = [crash.start_node(url, tmp_path, f"node-{n}", schema, camp) for n in (1, 2)]
    for node in nodes:
        _, err = await asyncio.to_thread(node.communicate, timeout=120)
        assert node.returncode == 0, err.decode()[-2000:]

    rows, details = await crash.attempts(url, schema)
    crash.check_outcome(rows, details, tmp_path)
    owners = {a.lease_owner for a in rows if a.lease_owner}
    assert owners == {"node-1", "node-2"}, "both nodes should have dialled"


async def test_sigkill_one_node_the_restart_reconciles(
    url: str, schema: str, tmp_path: Path
) -> None:
    await crash.seed(url, schema)

    await asyncio.to_thread(
        crash.kill_after_dials,
        crash.start_node(url, tmp_path, "node-1", schema),
        tmp_path,
        10,
    )
    final = crash.start_node(url, tmp_path, "node-1", schema)
    _, err = await asyncio.to_thread(final.communicate, timeout=120)
    assert final.returncode == 0, err.decode()[-2000:]

    rows, details = await crash.attempts(url, schema)
    crash.check_outcome(rows, details, tmp_path)
