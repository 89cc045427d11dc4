"""Telnyx call webhooks: Ed25519 signature check, mapping to `CarrierEvent`.

Every webhook is signed over `f"{timestamp}|{raw_body}"` with Telnyx's
Ed25519 key and must be fresh (carriers.md 3.4); anything else is refused
with 403 before its body is even parsed. The mapping core is Sans-I/O; the
Litestar handler at the bottom is glue.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from mediaserver.carriers.telnyx import decode_client_state
from mediaserver.controller.dialer import CarrierEvent, CarrierEventSink, CarrierStatus
from mediaserver.errors import ConfigError, ProtocolError
from mediaserver.logs import RateLimitedLog

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)

WEBHOOK_PATH = "/callbacks/telnyx/webhook"
TOLERANCE_S = 300

# hangup_cause of a call that was never answered (carriers.md 3.3).
_UNANSWERED_CAUSES = {
    "user_busy": CarrierStatus.BUSY,
    "call_rejected": CarrierStatus.DECLINED,
    "timeout": CarrierStatus.NO_ANSWER,
    "no_answer": CarrierStatus.NO_ANSWER,
    "originator_cancel": CarrierStatus.CANCELED,
}


def load_public_key(public_key_b64: str) -> VerifyKey:
    """The Ed25519 key from its base64 form (Mission Control, Public Key).

    Raises:
        ConfigError: not base64 of 32 bytes.
    """
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
        return VerifyKey(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ConfigError(
            f"TELNYX_PUBLIC_KEY is not a base64 Ed25519 key: {exc}"
        ) from exc


def verify_signature(
    key: VerifyKey,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Check a webhook's signature and freshness.

    Raises:
        ProtocolError: a header is missing, the signature is wrong, or the
            timestamp is outside the window.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    signature_b64 = lower.get("telnyx-signature-ed25519")
    timestamp = lower.get("telnyx-timestamp")
    if not signature_b64 or not timestamp:
        raise ProtocolError("missing Telnyx signature headers")
    if not timestamp.isdigit():
        raise ProtocolError("malformed telnyx-timestamp")
    if abs(now - int(timestamp)) > tolerance_s:
        raise ProtocolError("Telnyx webhook timestamp outside the allowed window")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(timestamp.encode() + b"|" + body, signature)
    except (binascii.Error, ValueError, BadSignatureError) as exc:
        raise ProtocolError(f"Telnyx signature does not match: {exc}") from exc


def map_hangup(cause: str, answered: bool) -> CarrierStatus:
    """Our status for a `call.hangup` with this `hangup_cause`."""
    if answered:
        return CarrierStatus.COMPLETED
    return _UNANSWERED_CAUSES.get(cause, CarrierStatus.FAILED)


def _parse_time(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _Bounded:
    """An insertion-ordered set that forgets its oldest members."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, item: str) -> bool:
        """Add `item`; False if it was already there."""
        if item in self._items:
            return False
        self._items[item] = None
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._items


class TelnyxEventMapper:
    """Turns webhook envelopes into `CarrierEvent`s (Sans-I/O).

    Remembers which calls were answered, since a hangup's cause alone does
    not say so, and which webhook ids it has seen, since Telnyx redelivers.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._answered = _Bounded(capacity)
        self._seen = _Bounded(capacity)

    def map(self, envelope: Any, now: dt.datetime) -> CarrierEvent | None:
        """The event a webhook carries, or None for one with no call news.

        Raises:
            ProtocolError: the envelope lacks its data, type or call id.
        """
        data = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
            raise ProtocolError("Telnyx webhook without data.payload")
        event_type = str(data.get("event_type", ""))
        payload: dict[str, Any] = data["payload"]
        call_control_id = payload.get("call_control_id")
        if not event_type or not isinstance(call_control_id, str):
            raise ProtocolError("Telnyx webhook without event_type or call id")
        webhook_id = data.get("id")
        if webhook_id and not self._seen.add(str(webhook_id)):
            return None

        status, detail = self._status(event_type, call_control_id, payload)
        if status is None:
            if event_type == "streaming.failed":
                # The call goes on without media until its time_limit_secs runs out.
                _warn.warning(
                    "telnyx-stream",
                    "telnyx media stream failed for %s: %s",
                    call_control_id,
                    payload.get("failure_reason", "no reason given"),
                )
            else:
                log.info("telnyx %s for %s", event_type, call_control_id)
            return None
        return CarrierEvent(
            provider="telnyx",
            provider_call_id=call_control_id,
            status=status,
            at=_parse_time(data.get("occurred_at")) or now,
            call_id=decode_client_state(payload.get("client_state")),
            detail=detail,
        )

    def _status(
        self, event_type: str, call_control_id: str, payload: dict[str, Any]
    ) -> tuple[CarrierStatus | None, str]:
        if event_type == "call.initiated":
            return CarrierStatus.INITIATED, ""
        if event_type == "call.answered":
            self._answered.add(call_control_id)
            return CarrierStatus.ANSWERED, ""
        if event_type == "call.hangup":
            cause = str(payload.get("hangup_cause") or "unspecified")
            sip = str(payload.get("sip_hangup_cause") or "")
            answered = call_control_id in self._answered
            detail = cause + (f" sip {sip}" if sip and sip != "unspecified" else "")
            return map_hangup(cause, answered), detail
        return None, ""


class TelnyxWebhooks:
    """Verifies, maps and forwards Telnyx webhooks to the sink."""

    def __init__(
        self,
        public_key_b64: str,
        sink: CarrierEventSink,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._key = load_public_key(public_key_b64)
        self._sink = sink
        self._clock = clock
        self._wall = wall
        self._mapper = TelnyxEventMapper()

    def __repr__(self) -> str:
        return "TelnyxWebhooks()"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> CarrierEvent | None:
        """Verify and map one webhook (Sans-I/O).

        Raises:
            ProtocolError: bad signature, stale timestamp or malformed body.
        """
        verify_signature(self._key, body, headers, now=self._wall())
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"Telnyx webhook is not JSON: {exc}") from exc
        return self._mapper.map(envelope, self._clock())

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Process one webhook; answers the HTTP status for Telnyx."""
        try:
            verify_signature(self._key, body, headers, now=self._wall())
        except ProtocolError as exc:
            _warn.warning("telnyx-signature", "refused Telnyx webhook: %s", exc)
            return 403
        try:
            envelope = json.loads(body)
            event = self._mapper.map(envelope, self._clock())
        except (ProtocolError, ValueError, UnicodeDecodeError) as exc:
            _warn.warning("telnyx-webhook", "malformed Telnyx webhook: %s", exc)
            return 400

        if event is not None:
            await self._sink.carrier_event(event)
        return 204


def telnyx_webhook_handler(
    webhooks: TelnyxWebhooks, path: str = WEBHOOK_PATH
) -> HTTPRouteHandler:
    """A Litestar POST handler serving `webhooks` at `path`."""

    @post(path, status_code=204, include_in_schema=False)
    async def telnyx_webhook(request: Request[Any, Any, Any]) -> Response[None]:
        body = await request.body()
        status = await webhooks.handle(body, dict(request.headers))
        return Response(content=None, status_code=status)

    return telnyx_webhook
