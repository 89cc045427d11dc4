"""A loopback fake of Twilio's Voice REST API and its status callbacks.

It answers the SDK's requests exactly as api.twilio.com would (carriers.md
2.1-2.3: form bodies with repeated keys, Basic auth, 201 Call JSON, error
JSON), then plays each call out from a per-number `CallScript`: signed
status callbacks in Twilio's order (2.4, 2.5) and, for answered calls, a
media stream to the `<Stream>` URL of the TwiML, opened by a `MediaPlayer`
(the media helper's loopback client plays a corpus recording).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import itertools
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from mediaserver.corpus import read_wav
from mediaserver.testing.fake_carrier_http import (
    FakeCarrier,
    HttpRequest,
    HttpResponse,
    media_phase,
    play_and_hold,
)
from mediaserver.testing.twilio_stream import TwilioStream

log = logging.getLogger(__name__)

_CALLS = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls\.json$")
_CALL = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls/(?P<sid>CA\w+)\.json$"
)

# Which StatusCallbackEvent reports each CallStatus; the rest are "completed".
_EVENT_OF_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
}


@dataclass(frozen=True)
class DialError:
    """What the fake answers to a dial instead of creating the call."""

    status: int
    code: int
    message: str


@dataclass(frozen=True)
class CallScript:
    """How the callee at one number behaves.

    outcome: answer, busy, no_answer, decline or fail.
    """

    outcome: str = "answer"
    recording: Path | None = None
    ring_s: float = 0.05
    hold_s: float = 1.0  # after the recording, before the callee hangs up
    dial_error: DialError | None = None
    codec: str = "PCMU"  # the call's codec; Telnyx streams it, Twilio is PCMU
    redeliver: bool = False  # send every callback twice
    late_ringing: bool = False  # Twilio: deliver `ringing` after the answer


@dataclass(frozen=True)
class MediaStart:
    """Where and how the fake opens a call's media stream."""

    url: str
    parameters: dict[str, str]
    recording: Path
    call_sid: str
    account_sid: str
    played: asyncio.Event = field(default_factory=asyncio.Event)  # player sets
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # fake sets


MediaPlayer = Callable[[MediaStart], Coroutine[Any, Any, None]]


@dataclass
class FakeCall:
    sid: str
    params: dict[str, list[str]]
    script: CallScript
    status: str = "queued"
    hangup_requests: int = 0
    callbacks: list[dict[str, str]] = field(default_factory=list)
    media_started: bool = False
    held: dict[str, str] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hangup: asyncio.Event = field(default_factory=asyncio.Event)

    def one(self, name: str) -> str:
        return (self.params.get(name) or [""])[0]


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """HMAC-SHA1 over the URL and the sorted parameters (carriers.md 2.5)."""
    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _rfc2822(when: dt.datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


class FakeTwilio(FakeCarrier[FakeCall]):
    """Twilio's REST API and call progress, served on 127.0.0.1."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        scripts: dict[str, CallScript] | None = None,
        default: CallScript | None = None,
        media_player: MediaPlayer | None = None,
    ) -> None:
        super().__init__(self._handle, "fake-twilio")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.scripts = dict(scripts or {})
        self.default = default or CallScript()
        self._player = media_player
        self._sids = itertools.count(1)

    @property
    def api_base(self) -> str:
        return self._server.base_url

    @property
    def callback_statuses(self) -> list[int]:
        return self._sender.statuses

    async def start(self) -> str:
        return await self._server.start()

    # REST API

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if (m := _CALLS.match(request.path)) and request.method == "POST":
            return self._create(m["account"], request)
        if m := _CALL.match(request.path):
            call = self.calls.get(m["sid"])
            if call is None or m["account"] != self.account_sid:
                return _error(404, 20404, "The requested resource was not found")
            if request.method == "POST":
                return self._update(call, request)
            return HttpResponse(200, self._call_json(call))
        return _error(404, 20404, "The requested resource was not found")

    def _authorized(self, request: HttpRequest) -> bool:
        expected = base64.b64encode(
            f"{self.account_sid}:{self._auth_token}".encode()
        ).decode()
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given, f"Basic {expected}")

    def _create(self, account: str, request: HttpRequest) -> HttpResponse:
        if account != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        params = parse_qs(request.body.decode(), keep_blank_values=True)
        to = (params.get("To") or [""])[0]
        script = self.scripts.get(to, self.default)
        if script.dial_error is not None:
            err = script.dial_error
            return _error(err.status, err.code, err.message)
        if not to.startswith("+") or not (params.get("From") or [""])[0]:
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")

        sid = f"CA{next(self._sids):032x}"
        call = FakeCall(sid=sid, params=params, script=script)
        self.calls[sid] = call
        self._spawn(self._play(call), f"fake-twilio-{sid}")
        return HttpResponse(201, self._call_json(call))

    def _update(self, call: FakeCall, request: HttpRequest) -> HttpResponse:
        params = parse_qs(request.body.decode())
        status = (params.get("Status") or [""])[0]
        if status not in ("completed", "canceled"):
            return _error(400, 21218, f"Invalid Status {status!r}")
        call.hangup_requests += 1
        if call.ended.is_set() or call.hangup.is_set():
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        call.hangup.set()
        return HttpResponse(200, self._call_json(call))

    def _call_json(self, call: FakeCall) -> bytes:
        now = _rfc2822(dt.datetime.now(dt.UTC))
        return json.dumps(
            {
                "sid": call.sid,
                "account_sid": self.account_sid,
                "to": call.one("To"),
                "from": call.one("From"),
                "status": call.status,
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": now,
                "date_updated": now,
                "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
                "subresource_uris": {},
            }
        ).encode()

    # Call progress

    async def _play(self, call: FakeCall) -> None:
        script = call.script
        try:
            await self._callback(call, "initiated")
            if script.outcome == "fail":
                await self._end(call, "failed", sip="503")
                return
            await self._callback(call, "ringing")
            if await self._hung_up_within(call, script.ring_s):
                await self._end(call, "canceled", sip="487")
                return
            if script.outcome != "answer":
                status, sip = {
                    "busy": ("busy", "486"),
                    "no_answer": ("no-answer", "487"),
                    "decline": ("busy", "603"),
                }[script.outcome]
                await self._end(call, status, sip=sip)
                return
            answered = asyncio.get_running_loop().time()
            await self._callback(call, "in-progress")
            await self._media(call)
            duration = asyncio.get_running_loop().time() - answered
            await self._end(call, "completed", sip="200", duration=duration)
        except Exception:
            log.exception("fake Twilio call %s failed", call.sid)
            call.ended.set()

    async def _media(self, call: FakeCall) -> None:
        """Stream the recording until it ends, the call is hung up or held."""
        start = self._media_start(call)
        if start is None or self._player is None:
            await self._hung_up_within(call, call.script.hold_s)
            return
        call.media_started = True
        # On a <Connect><Stream> call, our server closing the socket ends the
        # call too: there is no TwiML after it.
        await media_phase(
            self._player(start),
            played=start.played,
            ended=start.ended,
            hangup=call.hangup,
            hold_s=call.script.hold_s,
            name=call.sid,
        )

    def _media_start(self, call: FakeCall) -> MediaStart | None:
        twiml = call.one("Twiml")
        if not twiml or call.script.recording is None:
            return None
        stream = ET.fromstring(twiml).find("./Connect/Stream")
        if stream is None:
            return None
        parameters = {
            p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")
        }
        return MediaStart(
            url=stream.get("url", ""),
            parameters=parameters,
            recording=call.script.recording,
            call_sid=call.sid,
            account_sid=self.account_sid,
        )

    async def _end(
        self, call: FakeCall, status: str, *, sip: str, duration: float = 0.0
    ) -> None:
        extra = {"SipResponseCode": sip, "CallDuration": str(int(duration))}
        extra["Duration"] = str(int(duration // 60) + (1 if duration else 0))
        await self._callback(call, status, extra)
        call.ended.set()

    async def _callback(
        self, call: FakeCall, status: str, extra: dict[str, str] | None = None
    ) -> None:
        call.status = status
        url = call.one("StatusCallback")
        event = _EVENT_OF_STATUS.get(status, "completed")
        wanted = set(call.params.get("StatusCallbackEvent") or ["completed"])
        if not url or event not in wanted:
            return
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Called": call.one("To"),
            "Caller": call.one("From"),
            "Direction": "outbound-api",
            "From": call.one("From"),
            "SequenceNumber": str(len(call.callbacks)),
            "Timestamp": _rfc2822(dt.datetime.now(dt.UTC)),
            "To": call.one("To"),
            **(extra or {}),
        }
        call.callbacks.append(params)
        if call.script.late_ringing and status == "ringing":
            call.held = params  # delivered after the answer, as Twilio may
            return
        await self._deliver(url, params, call.script.redeliver)
        if call.held is not None and status != "ringing":
            held, call.held = call.held, None
            await self._deliver(url, held, call.script.redeliver)

    async def _deliver(self, url: str, params: dict[str, str], twice: bool) -> None:
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(self._auth_token, url, params),
            "user-agent": "TwilioProxy/1.1",
        }
        for _ in range(2 if twice else 1):
            await self._sender.post(url, urlencode(params).encode(), headers)


def _error(status: int, code: int, message: str) -> HttpResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return HttpResponse(status, json.dumps(body).encode())


class TwilioStreamPlayer:
    """A `MediaPlayer` over the media helper's loopback `TwilioStream`.

    Plays the recording `speed` times faster than real time, then keeps the
    line open (as a voicemail box or a silent person would) until the call
    ends, and sends `stop` if our server has not closed the stream first.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.streams: list[TwilioStream] = []

    async def __call__(self, start: MediaStart) -> None:
        pcm = read_wav(start.recording)
        stream = TwilioStream(
            start.url, token=None, custom_parameters=start.parameters, speed=self.speed
        )
        stream.call_sid = start.call_sid
        self.streams.append(stream)
        await play_and_hold(
            stream, pcm, played=start.played, ended=start.ended, carrier="Twilio"
        )
