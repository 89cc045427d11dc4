"""The campaign demo's carrier side: nothing (simulated), or a Twilio / Telnyx fake.

`DemoCarrier("twilio" | "telnyx", scripts, speed)` starts that carrier's
loopback fake and gives the settings (`env`) that point the service's
dialer at it (the test-only `carriers.*.api_base`) and let its signed
callback route verify the fake's signatures. Each contact's behaviour in
the demo CSV (`answer:<wav>;hold=S`, `busy`, `no_answer`, `decline`,
`dial_error`) becomes the fake's `CallScript` for that number, so the
same campaign runs over any provider. `callbacks()` counts the signed
status callbacks our routes accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from mediaserver.testing.fake_telnyx import FakeTelnyx, TelnyxStreamPlayer
from mediaserver.testing.fake_twilio import (
    CallScript,
    DialError,
    FakeTwilio,
    TwilioStreamPlayer,
)

log = logging.getLogger(__name__)

TWILIO_SID = "AC" + "7" * 32
TWILIO_TOKEN = "demo-twilio-auth-token"
TELNYX_KEY = "KEY-demo-telnyx"
TELNYX_CONNECTION = "demo-connection"
_OUTCOMES = {"busy": "busy", "no_answer": "no_answer", "decline": "decline"}


def carrier_scripts(
    contacts: Sequence[tuple[str, str, str]],
    corpus: Path,
    speed: float,
    hold_s: float,
) -> dict[str, CallScript]:
    """Each (number, name, behaviour) contact as the fake's script for it.

    A bare `hold` option keeps the callee on the line `hold_s` after its
    recording; `ring=S` rings S seconds of demo time.
    """
    scripts: dict[str, CallScript] = {}
    for number, _, behaviour in contacts:
        head, *options = behaviour.split(";")
        values = {
            key: float(value) if value else hold_s * speed
            for key, _, value in (option.partition("=") for option in options)
        }
        kind, _, recording = head.partition(":")
        # The simulated carrier counts in stream time; the fakes in real time.
        ring = values.get("ring", 0.5) / speed
        hold = values.get("hold", 0.0) / speed
        if kind == "answer":
            scripts[number] = CallScript(
                recording=corpus / recording, ring_s=ring, hold_s=hold
            )
        elif kind == "dial_error":
            error = DialError(400, 21211, "Invalid 'To' Phone Number")
            scripts[number] = CallScript(dial_error=error)
        else:
            scripts[number] = CallScript(
                outcome=_OUTCOMES.get(kind, "fail"), ring_s=ring
            )
    return scripts


class DemoCarrier:
    """The provider the demo dials through, with the settings that reach it."""

    def __init__(
        self, provider: str, scripts: dict[str, CallScript], speed: float
    ) -> None:
        self.provider = provider
        self.fake: FakeTwilio | FakeTelnyx | None = None
        self._player: TwilioStreamPlayer | TelnyxStreamPlayer | None = None
        if provider == "twilio":
            self._player = TwilioStreamPlayer(speed)
            self.fake = FakeTwilio(
                TWILIO_SID, TWILIO_TOKEN, scripts=scripts, media_player=self._player
            )
        elif provider == "telnyx":
            self._player = TelnyxStreamPlayer(speed)
            self.fake = FakeTelnyx(
                TELNYX_KEY, scripts=scripts, media_player=self._player
            )
        elif provider != "simulated":
            raise ValueError(f"unknown provider {provider!r}")
        self.env: dict[str, str] = {}

    async def __aenter__(self) -> DemoCarrier:
        if isinstance(self.fake, FakeTwilio):
            await self.fake.start()
            self.env = {
                "CALLWRIGHT_CARRIERS_TWILIO_ACCOUNT_SID": TWILIO_SID,
                "CALLWRIGHT_CARRIERS_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
                "CALLWRIGHT_CARRIERS_TWILIO_API_BASE": self.fake.api_base,
            }
        elif isinstance(self.fake, FakeTelnyx):
            await self.fake.start()
            self.env = {
                "CALLWRIGHT_CARRIERS_TELNYX_API_KEY": TELNYX_KEY,
                "CALLWRIGHT_CARRIERS_TELNYX_CONNECTION_ID": TELNYX_CONNECTION,
                "CALLWRIGHT_CARRIERS_TELNYX_PUBLIC_KEY": self.fake.public_key,
                "CALLWRIGHT_CARRIERS_TELNYX_API_BASE": self.fake.api_base,
            }
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fake is None:
            return
        try:
            async with asyncio.timeout(10):
                await self.fake.wait_ended()
        except TimeoutError:
            log.warning("the %s fake still had calls up at the end", self.provider)
        finally:
            if self._player is not None:
                for stream in self._player.streams:
                    await stream.close()
            await self.fake.close()

    def callbacks(self) -> tuple[int, int]:
        """(accepted, sent): signed status callbacks and our routes' answers."""
        if isinstance(self.fake, FakeTwilio):
            statuses = self.fake.callback_statuses
        elif isinstance(self.fake, FakeTelnyx):
            statuses = self.fake.webhook_statuses
        else:
            return 0, 0
        return sum(1 for s in statuses if 200 <= s < 300), len(statuses)
