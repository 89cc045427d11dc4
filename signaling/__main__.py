"""Serve WebRTC signaling alone: `python -m signaling`.

Environment: CALLWRIGHT_MEDIA_SECRET or CALLWRIGHT_SECRET (required),
CALLWRIGHT_WEBRTC_HOST
(127.0.0.1), CALLWRIGHT_WEBRTC_PORT (8767), CALLWRIGHT_ICE_HOSTS (comma
separated host-candidate addresses; empty: aioice's own discovery). Like
`python -m mediaserver.media_server`, it starts with an empty in-memory
plan source: it is the skeleton a deployment wires to its own plans.
"""

from __future__ import annotations

import asyncio
import os

from mediaserver.agent.client import AgentLinkConfig
from mediaserver.errors import ConfigError
from mediaserver.logs import configure
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import InMemoryPlans, OutcomeLog
from mediaserver.transports.webrtc import WebRtcSettings, WebRtcTransport
from mediaserver.transports.ws import StreamGate
from signaling.http import SignalingServer


async def serve(secret: bytes, host: str, port: int, ice_hosts: list[str]) -> None:
    gate = StreamGate(
        secret=secret,
        plans=InMemoryPlans(),
        observer=OutcomeLog(),
        agent=AgentLinkConfig(secret=secret),
        amd=AmdEngine(),
    )
    transport = WebRtcTransport(gate, WebRtcSettings(ice_host_addresses=ice_hosts))
    async with SignalingServer(transport, host, port):
        await asyncio.Future()


def main() -> None:
    configure()
    secret = os.environ.get("CALLWRIGHT_MEDIA_SECRET") or os.environ.get(
        "CALLWRIGHT_SECRET", ""
    )
    if not secret:
        raise ConfigError("CALLWRIGHT_MEDIA_SECRET (or CALLWRIGHT_SECRET) is not set")
    hosts = os.environ.get("CALLWRIGHT_ICE_HOSTS", "")
    asyncio.run(
        serve(
            secret.encode(),
            os.environ.get("CALLWRIGHT_WEBRTC_HOST", "127.0.0.1"),
            int(os.environ.get("CALLWRIGHT_WEBRTC_PORT", "8767")),
            [h.strip() for h in hosts.split(",") if h.strip()],
        )
    )


if __name__ == "__main__":
    main()
