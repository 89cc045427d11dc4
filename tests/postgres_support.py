"""The PostgreSQL the postgres-marked tests run against, and a schema a test.

`pg_url()` answers CALLWRIGHT_PG_URL when a server answers there; without
one the test skips, unless CALLWRIGHT_PG_REQUIRED=1 makes that a failure.
`fresh_schema()` builds a schema with a random name and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from mediaserver.store.db import create_schema, drop_schema, make_engine
from mediaserver.store.probe import _probe


def pg_url() -> str:
    url = os.environ.get("CALLWRIGHT_PG_URL", "")
    required = os.environ.get("CALLWRIGHT_PG_REQUIRED") == "1"
    reachable = bool(url) and asyncio.run(_probe(url.replace("+asyncpg", "")))
    if not reachable:
        reason = (
            f"PostgreSQL not reachable at {url!r}" if url else "CALLWRIGHT_PG_URL unset"
        )
        if required:
            pytest.fail(f"CALLWRIGHT_PG_REQUIRED=1 but {reason}")
        pytest.skip(reason)
    return url


@asynccontextmanager
async def fresh_schema(url: str, prefix: str) -> AsyncIterator[str]:
    name = prefix + uuid.uuid4().hex[:12]
    engine = make_engine(url, schema=name)
    await create_schema(engine, schema=name)
    await engine.dispose()
    try:
        yield name
    finally:
        engine = make_engine(url)
        await drop_schema(engine, name)
        await engine.dispose()
