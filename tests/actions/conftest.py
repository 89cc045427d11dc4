"""Fixtures for the actions tests: a real SQLite file, loopback fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.store.db import create_schema, make_engine
from mediaserver.testing.fake_openai import FakeOpenAI
from mediaserver.testing.webhook_receiver import WebhookReceiver

SECRET = b"test-webhook-secret"


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'callwright.sqlite3'}")
    await create_schema(engine)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secret=SECRET) as server:
        yield server


@pytest_asyncio.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server
