"""Fixtures for the carrier tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.carriers.helpers import AppServer, RecordingSink


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest_asyncio.fixture
async def app_server() -> AsyncIterator[AppServer]:
    server = AppServer()
    yield server
    await server.close()
