"""A loopback fake of Telnyx Call Control v2 and its signed webhooks.

It answers the SDK as api.telnyx.com/v2 would (carriers.md 3.1-3.2: JSON
bodies, Bearer auth, `{"data": ...}` replies, `{"errors": [...]}` on
failure), then plays each call from a per-number `CallScript`: webhooks in
Telnyx's order, signed with the fake's own Ed25519 key (3.3, 3.4) and, for
answered calls, a media stream to `stream_url` opened by a `MediaPlayer`
(the media helper's loopback client) in the script's codec.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nacl.signing import SigningKey

from mediaserver.corpus import read_wav
from mediaserver.testing.fake_carrier_http import (
    FakeCarrier,
    HttpRequest,
    HttpResponse,
    media_phase,
    play_and_hold,
)
from mediaserver.testing.fake_twilio import CallScript
from mediaserver.testing.telnyx_stream import TelnyxStream

log = logging.getLogger(__name__)

_DIAL = re.compile(r"^/v2/calls$")
_ACTION = re.compile(r"^/v2/calls/(?P<id>[^/]+)/actions/(?P<action>\w+)$")

# hangup_cause and sip_hangup_cause for each unanswered outcome (3.3).
_UNANSWERED = {
    "busy": ("user_busy", "486"),
    "decline": ("call_rejected", "603"),
    "no_answer": ("timeout", "480"),
    "fail": ("unspecified", "503"),
}


@dataclass(frozen=True)
class TelnyxMediaStart:
    """Where and how the fake opens a call's media stream."""

    url: str
    token: str  # stream_auth_token, sent as a header and in `connected`
    recording: Path
    call_control_id: str
    client_state: str
    codec: str  # PCMU or PCMA
    from_number: str
    to_number: str
    played: asyncio.Event = field(default_factory=asyncio.Event)  # player sets
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # fake sets


TelnyxMediaPlayer = Callable[[TelnyxMediaStart], Coroutine[Any, Any, None]]


@dataclass
class FakeTelnyxCall:
    call_control_id: str
    body: dict[str, Any]
    script: CallScript
    alive: bool = True
    hangup_requests: int = 0
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    media_started: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hangup: asyncio.Event = field(default_factory=asyncio.Event)


def sign_webhook(key: SigningKey, timestamp: int, body: bytes) -> str:
    """Base64 Ed25519 signature over `timestamp|body` (carriers.md 3.4)."""
    signed = key.sign(str(timestamp).encode() + b"|" + body)
    return base64.b64encode(signed.signature).decode()


class FakeTelnyx(FakeCarrier[FakeTelnyxCall]):
    """Telnyx Call Control and call progress, served on 127.0.0.1."""

    def __init__(
        self,
        api_key: str,
        *,
        scripts: dict[str, CallScript] | None = None,
        default: CallScript | None = None,
        media_player: TelnyxMediaPlayer | None = None,
        signing_key: SigningKey | None = None,
    ) -> None:
        super().__init__(self._handle, "fake-telnyx")
        self._api_key = api_key
        self.scripts = dict(scripts or {})
        self.default = default or CallScript()
        self._player = media_player
        self.signing_key = signing_key or SigningKey.generate()
        self._ids = itertools.count(1)

    @property
    def public_key(self) -> str:
        """The base64 verify key, as Mission Control shows it."""
        return base64.b64encode(bytes(self.signing_key.verify_key)).decode()

    @property
    def api_base(self) -> str:
        return self._server.base_url + "/v2"

    @property
    def webhook_statuses(self) -> list[int]:
        return self._sender.statuses

    async def start(self) -> str:
        await self._server.start()
        return self.api_base

    # REST API

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given, f"Bearer {self._api_key}"):
            return _error(401, "10009", "Authentication failed")
        if request.method == "POST" and _DIAL.match(request.path):
            return self._dial(request)
        if request.method == "POST" and (m := _ACTION.match(request.path)):
            call = self.calls.get(m["id"])
            if call is None:
                return _error(404, "10005", "Resource not found")
            if m["action"] != "hangup":
                return _error(422, "90015", f"action {m['action']} not faked")
            return self._hangup(call)
        return _error(404, "10005", "Resource not found")

    def _dial(self, request: HttpRequest) -> HttpResponse:
        try:
            body = json.loads(request.body)
        except ValueError:
            return _error(400, "10015", "Bad Request: body is not JSON")
        missing = [k for k in ("connection_id", "from", "to") if not body.get(k)]
        if missing:
            return _error(422, "10032", f"missing {', '.join(missing)}")
        script = self.scripts.get(str(body["to"]), self.default)
        if script.dial_error is not None:
            err = script.dial_error
            return _error(err.status, str(err.code), err.message)

        call_control_id = f"v3:fake-{next(self._ids):06d}"
        call = FakeTelnyxCall(call_control_id=call_control_id, body=body, script=script)
        self.calls[call_control_id] = call
        self._spawn(self._play(call), f"fake-telnyx-{next(self._ids)}")
        data = {
            "call_control_id": call_control_id,
            "call_leg_id": str(uuid.uuid4()),
            "call_session_id": str(uuid.uuid4()),
            "is_alive": False,
            "record_type": "call",
            "client_state": body.get("client_state"),
        }
        return HttpResponse(200, json.dumps({"data": data}).encode())

    def _hangup(self, call: FakeTelnyxCall) -> HttpResponse:
        call.hangup_requests += 1
        if not call.alive or call.hangup.is_set():
            return _error(422, "90018", "Call has already ended")
        call.hangup.set()
        return HttpResponse(200, b'{"data": {"result": "ok"}}')

    # Call progress

    async def _play(self, call: FakeTelnyxCall) -> None:
        script = call.script
        try:
            await self._webhook(call, "call.initiated", direction="outgoing")
            if await self._hung_up_within(call, script.ring_s):
                await self._end(call, "originator_cancel", "487", "caller")
                return
            if script.outcome != "answer":
                cause, sip = _UNANSWERED[script.outcome]
                await self._end(call, cause, sip, "callee")
                return
            await self._webhook(call, "call.answered", state="answered")
            by_us = await self._media(call)
            await self._end(
                call, "normal_clearing", "200", "caller" if by_us else "callee"
            )
        except Exception:
            log.exception("fake Telnyx call %s failed", call.call_control_id)
            call.alive = False
            call.ended.set()

    async def _media(self, call: FakeTelnyxCall) -> bool:
        """Stream until the recording and hold end; True if we hung up."""
        start = self._media_start(call)
        if start is None or self._player is None:
            return await self._hung_up_within(call, call.script.hold_s)
        call.media_started = True
        await self._webhook(call, "streaming.started", stream_url=start.url)
        who = await media_phase(
            self._player(start),
            played=start.played,
            ended=start.ended,
            hangup=call.hangup,
            hold_s=call.script.hold_s,
            name=call.call_control_id,
        )
        await self._webhook(call, "streaming.stopped", stream_url=start.url)
        if who == "server":
            # Closing the stream does not end a Telnyx call: the line stays
            # up until someone hangs up.
            await self._hung_up_within(call, call.script.hold_s)
        return call.hangup.is_set()

    def _media_start(self, call: FakeTelnyxCall) -> TelnyxMediaStart | None:
        url = call.body.get("stream_url")
        if not url or call.script.recording is None:
            return None
        return TelnyxMediaStart(
            url=str(url),
            token=str(call.body.get("stream_auth_token") or ""),
            recording=call.script.recording,
            call_control_id=call.call_control_id,
            client_state=str(call.body.get("client_state") or ""),
            codec=call.script.codec,
            from_number=str(call.body["from"]),
            to_number=str(call.body["to"]),
        )

    async def _end(
        self, call: FakeTelnyxCall, cause: str, sip: str, source: str
    ) -> None:
        call.alive = False
        await self._webhook(
            call,
            "call.hangup",
            hangup_cause=cause,
            sip_hangup_cause=sip,
            hangup_source=source,
            state="hangup",
        )
        call.ended.set()

    async def _webhook(
        self, call: FakeTelnyxCall, event_type: str, **extra: Any
    ) -> None:
        url = call.body.get("webhook_url")
        body = call.body
        payload = {
            "call_control_id": call.call_control_id,
            "connection_id": body.get("connection_id"),
            "client_state": body.get("client_state"),
            "from": body.get("from"),
            "to": body.get("to"),
            **extra,
        }
        envelope = {
            "data": {
                "record_type": "event",
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
                "payload": payload,
            },
            "meta": {"attempt": 1, "delivered_to": url},
        }
        call.webhooks.append(envelope)
        if not url:
            return
        raw = json.dumps(envelope).encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "telnyx-signature-ed25519": sign_webhook(self.signing_key, timestamp, raw),
            "telnyx-timestamp": str(timestamp),
        }
        await self._sender.post(str(url), raw, headers)
        if call.script.redeliver:
            # Telnyx retries with the same event id.
            await self._sender.post(str(url), raw, headers)


class TelnyxStreamPlayer:
    """A `TelnyxMediaPlayer` over the media helper's loopback `TelnyxStream`.

    Plays the recording in the call's codec `speed` times faster than real
    time, holds the line until the call ends, then sends `stop` if our
    server has not closed the stream first.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.streams: list[TelnyxStream] = []

    async def __call__(self, start: TelnyxMediaStart) -> None:
        pcm = read_wav(start.recording)
        encoding: Literal["PCMU", "PCMA"] = "PCMA" if start.codec == "PCMA" else "PCMU"
        stream = TelnyxStream(
            start.url, token=start.token or None, encoding=encoding, speed=self.speed
        )
        stream.call_control_id = start.call_control_id
        self.streams.append(stream)
        await play_and_hold(
            stream, pcm, played=start.played, ended=start.ended, carrier="Telnyx"
        )


def _error(status: int, code: str, title: str) -> HttpResponse:
    body = {"errors": [{"code": code, "title": title, "detail": title}]}
    return HttpResponse(status, json.dumps(body).encode())
