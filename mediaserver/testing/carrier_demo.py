"""A small campaign over the Twilio or Telnyx fake, end to end on loopback.

    .venv/bin/python -m mediaserver.testing.carrier_demo --carrier telnyx --codec PCMA

Everything runs for real on 127.0.0.1: the controller with a SQLite queue,
the media server with the ONNX VAD, the reference agent, our dialer over
the carrier's official SDK, our signed-callback endpoint, and the carrier
fake, which rings each contact by its script, calls back with signed
webhooks and streams corpus recordings into the media server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Litestar

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
from mediaserver.controller.campaign import (
    CallerIdPolicy,
    CallingNumber,
    CallingWindow,
    Campaign,
    RetryPolicy,
)
from mediaserver.controller.dialer import Dialer
from mediaserver.controller.launch import LaunchRequest
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import TERMINAL
from mediaserver.corpus import default_corpus_dir
from mediaserver.logs import configure, mask_number
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import MediaServer, MediaServerSettings
from mediaserver.plan import CallObserver, PlanSource
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import Attempt, QueueStore
from mediaserver.testing.fake_carrier_http import LoopbackServer
from mediaserver.testing.fake_telnyx import FakeTelnyx, TelnyxStreamPlayer
from mediaserver.testing.fake_twilio import (
    CallScript,
    DialError,
    FakeTwilio,
    TwilioStreamPlayer,
)

log = logging.getLogger(__name__)

SECRET = "carrier-demo-secret-5b1e"
TWILIO_SID = "AC" + "3" * 32
TWILIO_TOKEN = "twilio-demo-token"
TELNYX_KEY = "KEY-demo"
HUMAN = "human/asterisk_en_hello_padded.wav"
MACHINE = "machine/asterisk_en_vm_unavailable_ext1234_beep.wav"

# Each contact's number, what its callee does, and the status it must end in.
CONTACTS: list[tuple[str, str, str]] = [
    ("+12125550101", "human", "completed"),
    ("+12125550102", "machine", "completed"),
    ("+12125550103", "busy", "busy"),
    ("+12125550104", "decline", "declined"),
    ("+12125550105", "no_answer", "no_answer"),
    ("+12125550106", "fail", "failed"),
    ("+12125550107", "bad_number", "initiation_failed"),
]


def contact_scripts(codec: str, corpus: Path) -> dict[str, CallScript]:
    """The callee scripts; the human answers in `codec`, the machine in PCMU."""
    quick: dict[str, Any] = {"ring_s": 0.05, "hold_s": 0.3}
    scripts: dict[str, CallScript] = {}
    for number, kind, _ in CONTACTS:
        if kind == "human":
            script = CallScript(recording=corpus / HUMAN, codec=codec, **quick)
        elif kind == "machine":
            script = CallScript(recording=corpus / MACHINE, **quick)
        elif kind == "bad_number":
            error = DialError(400, 21211, "Invalid 'To' Phone Number")
            script = CallScript(dial_error=error)
        else:
            script = CallScript(outcome=kind, **quick)
        scripts[number] = script
    return scripts


@dataclass
class DemoResult:
    attempts: list[Attempt]
    callback_statuses: list[int]  # HTTP answers our endpoint gave the fake
    streams: list[Any]  # the media clients' streams, one per answered call


class _Late:
    """Plans and observer for the media server, once the controller exists."""

    def __init__(self) -> None:
        self.controller: Controller | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.controller, name)


def _campaign(provider: str, agent_url: str) -> Campaign:
    number = CallingNumber(id="cn-1", number="+12125550100", provider=provider)
    return Campaign(
        id="demo",
        name=f"Demo over {provider}",
        version=1,
        provider=provider,
        agent_url=agent_url,
        opening_script="Hello, this is Callwright calling about your order.",
        caller_id=CallerIdPolicy(default=number),
        retry=RetryPolicy(on_busy=False, on_no_answer=False, max_retries=0),
        calling_window=CallingWindow(start="00:00", end="24:00"),
        calls_per_second=100.0,
        ring_timeout_s=10,
    )


class _CarrierSide:
    """The fake, our dialer and our callback endpoint for one carrier."""

    def __init__(self, provider: str, scripts: dict[str, CallScript], speed: float):
        self.provider = provider
        self.fake: FakeTwilio | FakeTelnyx
        self.player: TwilioStreamPlayer | TelnyxStreamPlayer
        if provider == "twilio":
            self.player = TwilioStreamPlayer(speed)
            self.fake = FakeTwilio(
                TWILIO_SID, TWILIO_TOKEN, scripts=scripts, media_player=self.player
            )
        elif provider == "telnyx":
            self.player = TelnyxStreamPlayer(speed)
            self.fake = FakeTelnyx(
                TELNYX_KEY, scripts=scripts, media_player=self.player
            )
        else:
            raise ValueError(f"unknown carrier {provider!r}")
        self.callbacks = LoopbackServer(None, "demo-callbacks")
        self.dialer: Dialer | None = None

    @property
    def callback_url(self) -> str:
        base = self.callbacks.bind()
        path = STATUS_PATH if isinstance(self.fake, FakeTwilio) else WEBHOOK_PATH
        return base + path

    @property
    def callback_statuses(self) -> list[int]:
        if isinstance(self.fake, FakeTwilio):
            return self.fake.callback_statuses
        return self.fake.webhook_statuses

    async def start(self, controller: Controller) -> None:
        base = self.callbacks.bind()
        handler: Any
        if isinstance(self.fake, FakeTwilio):
            handler = twilio_status_handler(
                TwilioStatusCallbacks(TWILIO_TOKEN, base, controller)
            )
        else:
            handler = telnyx_webhook_handler(
                TelnyxWebhooks(self.fake.public_key, controller)
            )
        self.callbacks.app = Litestar(route_handlers=[handler], logging_config=None)
        await self.callbacks.start()

    async def start_fake(self) -> Dialer:
        await self.fake.start()
        if isinstance(self.fake, FakeTwilio):
            creds = TwilioCredentials(TWILIO_SID, TWILIO_TOKEN)
            self.dialer = TwilioDialer(creds, api_base=self.fake.api_base)
        else:
            telnyx_creds = TelnyxCredentials(api_key=TELNYX_KEY, connection_id="cc-1")
            self.dialer = TelnyxDialer(telnyx_creds, api_base=self.fake.api_base)
        return self.dialer

    async def close(self) -> None:
        if self.dialer is not None:
            await self.dialer.close()
        await self.fake.close()
        await self.callbacks.close()


async def run_campaign(
    provider: str,
    *,
    codec: str = "PCMU",
    db_path: Path,
    speed: float = 20.0,
    amd: AmdEngine | None = None,
    corpus: Path | None = None,
    within_s: float = 60.0,
) -> DemoResult:
    """Run every contact of `CONTACTS` through `provider`'s fake to its end."""
    scripts = contact_scripts(codec, corpus or default_corpus_dir())
    missing = [s.recording for s in scripts.values() if s.recording]
    missing = [p for p in missing if p is not None and not p.is_file()]
    if missing:
        raise FileNotFoundError(f"corpus files missing: {missing}")

    carrier = _CarrierSide(provider, scripts, speed)
    engine = make_engine(f"sqlite:///{db_path}")
    late = _Late()
    plans: PlanSource = late  # type: ignore[assignment]
    observer: CallObserver = late  # type: ignore[assignment]
    media = MediaServer(
        MediaServerSettings(secret=SECRET, start_timeout_s=2.0),
        plans=plans,
        observer=observer,
        amd=amd or AmdEngine(),
    )
    controller: Controller | None = None
    try:
        await create_schema(engine)
        dialer = await carrier.start_fake()
        async with ReferenceAgent(SECRET, max_speech_ms=2000) as agent:
            await media.start()
            controller = Controller(
                QueueStore(engine),
                StaticCampaigns([_campaign(provider, agent.url)]),
                {provider: dialer},
                media_urls={provider: media.url(provider)},
                status_callback_urls={provider: carrier.callback_url},
                token_secret=SECRET.encode(),
                poll_s=0.05,
            )
            late.controller = controller
            await carrier.start(controller)

            launches = [
                LaunchRequest(campaign_id="demo", number=n) for n, *_ in CONTACTS
            ]
            await controller.enqueue(launches)
            await controller.start()
            attempts = await _until_all_terminal(controller, within_s)
            async with asyncio.timeout(10):
                await carrier.fake.wait_ended()
            await controller.stop()
            controller = None
        return DemoResult(
            attempts, list(carrier.callback_statuses), carrier.player.streams
        )
    finally:
        if controller is not None:
            await controller.stop()
        await media.stop()
        await carrier.close()
        await engine.dispose()


async def _until_all_terminal(controller: Controller, within_s: float) -> list[Attempt]:
    async with asyncio.timeout(within_s):
        while True:
            attempts = await controller.store.all_attempts()
            if len(attempts) == len(CONTACTS) and all(
                a.status in TERMINAL for a in attempts
            ):
                return attempts
            await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carrier", choices=["twilio", "telnyx"], default="twilio")
    parser.add_argument("--codec", choices=["PCMU", "PCMA"], default="PCMU")
    parser.add_argument("--speed", type=float, default=5.0)
    args = parser.parse_args()
    configure("WARNING")

    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(
            run_campaign(
                args.carrier,
                codec=args.codec,
                db_path=Path(folder) / "queue.sqlite3",
                speed=args.speed,
            )
        )
    expected = {number: status for number, _, status in CONTACTS}
    print(f"campaign over the {args.carrier} fake ({args.codec}):")
    for attempt in sorted(result.attempts, key=lambda a: a.recipient_number):
        ok = (
            "ok "
            if attempt.status.value == expected[attempt.recipient_number]
            else "BAD"
        )
        print(
            f"  {ok} {mask_number(attempt.recipient_number)}  "
            f"{attempt.status.value:<18} verdict={attempt.verdict or '-':<8} "
            f"{attempt.initiation_error or ''}"
        )
    accepted = sum(1 for s in result.callback_statuses if s == 204)
    print(f"  signed callbacks accepted: {accepted}/{len(result.callback_statuses)}")


if __name__ == "__main__":
    main()
