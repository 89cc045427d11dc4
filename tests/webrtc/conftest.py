"""Our WebRTC transport, its signaling server and the reference agent on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from mediaserver import tokens
from mediaserver.agent.client import AgentLinkConfig
from mediaserver.agent.reference import ReferenceAgent
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import InMemoryPlans, OutcomeLog
from mediaserver.plan import CallPlan
from mediaserver.transports.webrtc import WebRtcSettings, WebRtcTransport
from mediaserver.transports.ws import StreamGate
from signaling.http import SignalingServer
from tests.media.helpers import register_plan

SECRET = "webrtc-test-secret-41c9"


class Rig:
    """Signaling server, transport, agent, plans and outcomes of one test."""

    def __init__(
        self,
        server: SignalingServer,
        agent: ReferenceAgent,
        plans: InMemoryPlans,
        outcomes: OutcomeLog,
        http: httpx.AsyncClient,
    ) -> None:
        self.server = server
        self.transport = server.transport
        self.agent = agent
        self.plans = plans
        self.outcomes = outcomes
        self.http = http

    @property
    def url(self) -> str:
        return self.server.url

    def plan(self, **overrides: Any) -> tuple[CallPlan, str]:
        """Register a plan for a new call; returns it with its media token."""
        fields = {
            "campaign_id": "camp-webrtc",
            "agent_url": self.agent.url,
            **overrides,
        }
        return register_plan(self.plans, media_token, fields)


def media_token(call_id: str, ttl_s: int = 600) -> str:
    return tokens.issue(SECRET.encode(), call_id, ttl_s=ttl_s, purpose="media")


@pytest.fixture(scope="session")
def amd_engine() -> AmdEngine:
    engine = AmdEngine()
    engine.warm_up()
    return engine


def settings(**overrides: Any) -> WebRtcSettings:
    # Loopback only: nothing in these tests may reach another address.
    fields: dict[str, Any] = {"ice_host_addresses": ["127.0.0.1"]}
    fields.update(overrides)
    return WebRtcSettings(**fields)


async def make_rig(amd_engine: AmdEngine, webrtc: WebRtcSettings) -> AsyncIterator[Rig]:
    plans = InMemoryPlans()
    outcomes = OutcomeLog()
    secret = SECRET.encode()
    gate = StreamGate(
        secret=secret,
        plans=plans,
        observer=outcomes,
        agent=AgentLinkConfig(secret=secret),
        amd=amd_engine,
    )
    server = SignalingServer(WebRtcTransport(gate, webrtc))
    async with (
        ReferenceAgent(SECRET, max_speech_ms=2000) as agent,
        server,
        httpx.AsyncClient(timeout=10) as http,
    ):
        yield Rig(server, agent, plans, outcomes, http)


@pytest_asyncio.fixture
async def rig(amd_engine: AmdEngine) -> AsyncIterator[Rig]:
    async for r in make_rig(amd_engine, settings()):
        yield r


@pytest_asyncio.fixture
async def pcmu_rig(amd_engine: AmdEngine) -> AsyncIterator[Rig]:
    async for r in make_rig(amd_engine, settings(codecs=["audio/PCMU"])):
        yield r


@pytest_asyncio.fixture(params=["opus", "pcmu"])
async def codec_rig(
    request: pytest.FixtureRequest, amd_engine: AmdEngine
) -> AsyncIterator[Rig]:
    """The rig answering with Opus (the offer's first codec), then PCMU only."""
    codecs = [] if request.param == "opus" else ["audio/PCMU"]
    async for r in make_rig(amd_engine, settings(codecs=codecs)):
        yield r
