"""A real media server and the reference agent on 127.0.0.1, ephemeral ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mediaserver.agent.reference import ReferenceAgent
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import (
    InMemoryPlans,
    MediaServer,
    MediaServerSettings,
    OutcomeLog,
)
from tests.media.helpers import SECRET, Rig


@pytest.fixture(scope="session")
def amd_engine() -> AmdEngine:
    """One engine for the suite, warmed up so no test pays the JIT compile."""
    engine = AmdEngine()
    engine.warm_up()
    return engine


@pytest_asyncio.fixture
async def rig(amd_engine: AmdEngine) -> AsyncIterator[Rig]:
    plans = InMemoryPlans()
    settings = MediaServerSettings(secret=SECRET, start_timeout_s=1.0)
    outcomes = OutcomeLog()
    server = MediaServer(settings, plans=plans, observer=outcomes, amd=amd_engine)
    async with ReferenceAgent(SECRET, max_speech_ms=2000) as agent, server:
        yield Rig(server, agent, plans, outcomes, amd_engine)
