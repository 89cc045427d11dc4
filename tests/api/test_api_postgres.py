"""The HTTP API over PostgreSQL: the same routes, a fresh schema per test.

Needs CALLWRIGHT_PG_URL (scripts/test.sh sets it); without a server the
tests skip, unless CALLWRIGHT_PG_REQUIRED=1 makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mediaserver.store.db import create_schema, drop_schema, make_engine
from mediaserver.store.probe import _probe
from tests.api.conftest import Api, campaign_body, running_api

pytestmark = pytest.mark.postgres


def _pg_url() -> str:
    url = os.environ.get("CALLWRIGHT_PG_URL", "")
    reachable = bool(url) and asyncio.run(_probe(url.replace("+asyncpg", "")))
    if not reachable:
        reason = (
            f"PostgreSQL not reachable at {url!r}" if url else "no CALLWRIGHT_PG_URL"
        )
        if os.environ.get("CALLWRIGHT_PG_REQUIRED") == "1":
            pytest.fail(f"CALLWRIGHT_PG_REQUIRED=1 but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="module")
def pg_url() -> str:
    return _pg_url()


@pytest_asyncio.fixture
async def pg_api(pg_url: str) -> AsyncIterator[Api]:
    schema = "cw_api_" + uuid.uuid4().hex[:12]
    engine = make_engine(pg_url, schema=schema)
    await create_schema(engine, schema=schema)
    try:
        async with running_api(engine) as running:
            yield running
    finally:
        await engine.dispose()
        cleanup = make_engine(pg_url)
        await drop_schema(cleanup, schema)
        await cleanup.dispose()


async def test_campaign_versions_launch_csv_and_cancel_on_postgres(pg_api: Api) -> None:
    client = pg_api.client
    created = (await client.post("/campaigns", json=campaign_body())).json()
    campaign_id = created["id"]
    updated = await client.put(
        f"/campaigns/{campaign_id}", json=campaign_body(name="v2")
    )
    assert updated.json()["version"] == 2
    assert (await client.get(f"/campaigns/{campaign_id}?version=1")).json()["name"] == (
        "Renewals"
    )

    missing = await client.post(
        "/calls", json={"campaign_id": campaign_id, "number": "+12025550123"}
    )
    assert missing.status_code == 422
    assert list(missing.json()["errors"]) == ["variables.customer_name"]

    launched = await client.post(
        "/calls",
        json={
            "campaign_id": campaign_id,
            "number": "+96891234567",
            "variables": {"customer_name": "Ahmed"},
        },
    )
    assert launched.status_code == 201
    call = (await client.get(f"/calls/{launched.json()['id']}")).json()
    assert call["campaign_version"] == 2
    assert call["calling_number"] == "+96822000100"

    report = (
        await client.post(
            f"/campaigns/{campaign_id}/calls/csv",
            content=b"phone,customer_name\n+12025550101,A\n+1202,B\n+12025550103,C\n",
            headers={"Content-Type": "text/csv"},
        )
    ).json()
    assert report["accepted"] == 2
    assert [r["row"] for r in report["rejected"]] == [3]

    canceled = (await client.post(f"/campaigns/{campaign_id}/cancel")).json()
    assert canceled["canceled"] == 3
    listed = (
        await client.get(f"/calls?campaign_id={campaign_id}&status=canceled")
    ).json()
    assert len(listed["items"]) == 3
