"""A small campaign end to end over the Twilio fake and over the Telnyx fake.

Everything is real and on loopback: the controller with its SQLite queue,
the media server with the ONNX VAD, the reference agent, our dialers over
the official SDKs, our signed-callback endpoints, and the carrier fakes
that dial the contacts, call back with signed webhooks and stream corpus
recordings into the media server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mediaserver.agent.reference import ReferenceAgent
from mediaserver.api.callbacks_telnyx import (
    WEBHOOK_PATH,
    TelnyxWebhooks,
    telnyx_webhook_handler,
)
from mediaserver.api.callbacks_twilio import (
    STATUS_PATH,
    TwilioStatusCallbacks,
    twilio_status_handler,
)
from mediaserver.carriers.telnyx import TelnyxCredentials, TelnyxDialer
from mediaserver.carriers.twilio import TwilioCredentials, TwilioDialer
from mediaserver.controller.campaign import CallerIdPolicy, CallingNumber
from mediaserver.controller.dialer import Dialer
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import TERMINAL
from mediaserver.corpus import default_corpus_dir
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import MediaServer, MediaServerSettings
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import Attempt, QueueStore
from mediaserver.testing.fake_telnyx import FakeTelnyx, TelnyxStreamPlayer
from mediaserver.testing.fake_twilio import (
    CallScript,
    DialError,
    FakeTwilio,
    TwilioStreamPlayer,
)
from tests.carriers.helpers import AppServer
from tests.controller.queue_support import campaign, launch

SECRET = "carrier-e2e-secret-91c2"
SPEED = 20.0
TWILIO_SID = "AC" + "3" * 32
TWILIO_TOKEN = "twilio-e2e-token"
TELNYX_KEY = "KEY-e2e"

HUMAN = "human/asterisk_en_hello_padded.wav"
MACHINE = "machine/asterisk_en_vm_unavailable_ext1234_beep.wav"


def recording(name: str) -> Path:
    path = default_corpus_dir() / name
    if not path.is_file():
        pytest.fail(f"corpus file {path} is missing; set CALLWRIGHT_CORPUS")
    return path


def scripts(codec_for_human: str) -> dict[str, CallScript]:
    quick = {"ring_s": 0.05, "hold_s": 0.3}
    return {
        "+12125550101": CallScript(
            recording=recording(HUMAN), codec=codec_for_human, **quick
        ),
        "+12125550102": CallScript(recording=recording(MACHINE), codec="PCMU", **quick),
        "+12125550103": CallScript(outcome="busy", **quick),
        "+12125550104": CallScript(outcome="decline", **quick),
        "+12125550105": CallScript(outcome="no_answer", **quick),
        "+12125550106": CallScript(outcome="fail", **quick),
        "+12125550107": CallScript(
            dial_error=DialError(400, 21211, "Invalid 'To' Phone Number")
        ),
    }


EXPECTED = {
    "+12125550101": "completed",
    "+12125550102": "completed",
    "+12125550103": "busy",
    "+12125550104": "declined",
    "+12125550105": "no_answer",
    "+12125550106": "failed",
    "+12125550107": "initiation_failed",
}


class Carrier:
    """One carrier's fake, dialer and callback handler, for one test."""

    def __init__(self, provider: str, codec: str, callbacks_base: str) -> None:
        self.provider = provider
        self.players: Any
        self.fake: FakeTwilio | FakeTelnyx
        self.dialer: Dialer
        if provider == "twilio":
            self.players = TwilioStreamPlayer(speed=SPEED)
            self.fake = FakeTwilio(
                TWILIO_SID,
                TWILIO_TOKEN,
                scripts=scripts(codec),
                media_player=self.players,
            )
            self.callback_url = callbacks_base + STATUS_PATH
        else:
            self.players = TelnyxStreamPlayer(speed=SPEED)
            self.fake = FakeTelnyx(
                TELNYX_KEY, scripts=scripts(codec), media_player=self.players
            )
            self.callback_url = callbacks_base + WEBHOOK_PATH

    async def start(self) -> None:
        await self.fake.start()
        if isinstance(self.fake, FakeTwilio):
            creds = TwilioCredentials(TWILIO_SID, TWILIO_TOKEN)
            self.dialer = TwilioDialer(creds, api_base=self.fake.api_base)
        else:
            telnyx_creds = TelnyxCredentials(api_key=TELNYX_KEY, connection_id="cc-1")
            self.dialer = TelnyxDialer(telnyx_creds, api_base=self.fake.api_base)

    def handler(self, controller: Controller, base: str) -> Any:
        if isinstance(self.fake, FakeTwilio):
            callbacks = TwilioStatusCallbacks(TWILIO_TOKEN, base, controller)
            return twilio_status_handler(callbacks)
        return telnyx_webhook_handler(TelnyxWebhooks(self.fake.public_key, controller))

    async def close(self) -> None:
        await self.dialer.close()
        await self.fake.close()


@pytest.fixture(scope="module")
def amd_engine() -> AmdEngine:
    return AmdEngine()


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[ReferenceAgent]:
    async with ReferenceAgent(SECRET, max_speech_ms=2000) as agent:
        yield agent


async def run_campaign(
    tmp_path: Path,
    provider: str,
    codec: str,
    agent: ReferenceAgent,
    amd_engine: AmdEngine,
    app_server: AppServer,
) -> tuple[list[Attempt], Carrier]:
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    await create_schema(engine)
    carrier = Carrier(provider, codec, app_server.base_url)
    await carrier.start()
    number = CallingNumber(id="cn-1", number="+12125550100", provider=provider)
    plans = StaticCampaigns(
        [
            campaign(
                provider=provider,
                agent_url=agent.url,
                caller_id=CallerIdPolicy(default=number),
                ring_timeout_s=10,
            )
        ]
    )
    settings = MediaServerSettings(secret=SECRET, start_timeout_s=2.0)
    media: MediaServer | None = None
    controller: Controller | None = None
    try:
        # The media server needs the controller and the controller its URL.
        holder: list[Controller] = []
        media = MediaServer(
            settings, plans=_Late(holder), observer=_Late(holder), amd=amd_engine
        )
        await media.start()
        controller = Controller(
            QueueStore(engine),
            plans,
            {provider: carrier.dialer},
            media_urls={provider: media.url(provider)},
            status_callback_urls={provider: carrier.callback_url},
            token_secret=SECRET.encode(),
            poll_s=0.05,
        )
        holder.append(controller)
        await app_server.serve([carrier.handler(controller, app_server.base_url)])

        await controller.enqueue([launch(n) for n in EXPECTED])
        await controller.start()
        attempts = await _until_all_terminal(controller)
        async with asyncio.timeout(10):
            await carrier.fake.wait_ended()
        return attempts, carrier
    finally:
        if controller is not None:
            await controller.stop()
        if media is not None:
            await media.stop()
        await carrier.close()
        await engine.dispose()


class _Late:
    """Forwards to the controller once it exists (plans and observer)."""

    def __init__(self, holder: list[Controller]) -> None:
        self._holder = holder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._holder[0], name)


async def _until_all_terminal(controller: Controller) -> list[Attempt]:
    async with asyncio.timeout(45):
        while True:
            attempts = await controller.store.all_attempts()
            if len(attempts) == len(EXPECTED) and all(
                a.status in TERMINAL for a in attempts
            ):
                return attempts
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("provider", "codec"), [("twilio", "PCMU"), ("telnyx", "PCMU"), ("telnyx", "PCMA")]
)
async def test_campaign_over_carrier_fake(
    tmp_path: Path,
    provider: str,
    codec: str,
    agent: ReferenceAgent,
    amd_engine: AmdEngine,
    app_server: AppServer,
) -> None:
    attempts, carrier = await run_campaign(
        tmp_path, provider, codec, agent, amd_engine, app_server
    )
    by_number = {a.recipient_number: a for a in attempts}

    assert {n: a.status.value for n, a in by_number.items()} == EXPECTED
    assert by_number["+12125550101"].verdict == "human"
    assert by_number["+12125550102"].verdict == "machine"
    assert "21211" in (by_number["+12125550107"].initiation_error or "")
    for number, attempt in by_number.items():
        if EXPECTED[number] != "initiation_failed":
            assert attempt.provider_call_id, number
    # Every callback was signed and accepted; both answered calls streamed.
    statuses = (
        carrier.fake.callback_statuses
        if isinstance(carrier.fake, FakeTwilio)
        else carrier.fake.webhook_statuses
    )
    assert statuses
    assert set(statuses) == {204}
    streams = carrier.players.streams
    assert len(streams) == 2
    assert all(s.frames_sent > 0 for s in streams)
    if provider == "telnyx":
        assert {s.encoding for s in streams} == {codec, "PCMU"}
