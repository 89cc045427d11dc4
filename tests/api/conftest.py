"""A real API server on 127.0.0.1 over a temp SQLite file, and an HTTP client."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.api.app import create_app
from mediaserver.api.control import ControlBackend
from mediaserver.api.routes_actions import actions_router
from mediaserver.api.server import ApiServer
from mediaserver.store.campaigns import CampaignStore
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore

API_KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"


class Api:
    """The running server and what a test may want to reach behind it."""

    def __init__(
        self, client: httpx.AsyncClient, server: ApiServer, queue: QueueStore
    ) -> None:
        self.client = client
        self.server = server
        self.queue = queue
        self.enqueued = 0  # how many times the backend woke the "dispatcher"


def campaign_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Renewals",
        "agent_url": "ws://127.0.0.1:9/agent",
        "opening_script": "Hello {customer_name}",
        "caller_id": {
            "default": {"id": "num-us", "number": "+12025550100"},
            "overrides": [
                {"prefix": "+968", "number": {"id": "num-om", "number": "+96822000100"}}
            ],
        },
        "variables": [
            {"name": "customer_name", "type": "string", "required": True},
            {"name": "balance", "type": "number"},
        ],
        "metadata": [{"name": "crm_id", "type": "string"}],
    }
    body.update(changes)
    return body


@asynccontextmanager
async def running_api(engine: AsyncEngine, **options: Any) -> AsyncIterator[Api]:
    """The API over `engine` (schema already created), serving on loopback."""
    queue = QueueStore(engine)
    holder: list[Api] = []

    def woke() -> None:
        holder[0].enqueued += 1

    backend = ControlBackend(queue, CampaignStore(engine), on_enqueued=woke, **options)
    app = create_app(backend, [API_KEY, OTHER_KEY], routes=[actions_router(engine)])
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            holder.append(Api(client, server, queue))
            yield holder[0]
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}")
    await create_schema(engine)
    try:
        async with running_api(engine) as running:
            yield running
    finally:
        await engine.dispose()


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
