"""Twilio status callbacks: signature check, mapping to `CarrierEvent`.

The core (`TwilioStatusCallbacks.handle`) takes the request path with its
query, the raw form body and the headers, and answers an HTTP status; the
Litestar handler at the bottom is only glue. The signature is checked
against the configured public URL, never the Host a proxy rewrote
(carriers.md 2.5).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from twilio.request_validator import RequestValidator

from mediaserver.carriers.twilio import map_call_status
from mediaserver.controller.dialer import (
    TERMINAL_STATUSES,
    CarrierEvent,
    CarrierEventSink,
)
from mediaserver.errors import ProtocolError
from mediaserver.logs import RateLimitedLog

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)

STATUS_PATH = "/callbacks/twilio/status"


class _MultiParams(dict[str, list[str]]):
    """Repeated form keys in the shape RequestValidator reads (`getall`)."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def signature_url(public_url: str, path_and_query: str) -> str:
    """The URL Twilio signed: our public base plus the path and query we got."""
    return public_url.rstrip("/") + path_and_query


def verify_signature(
    auth_token: str, url: str, form_body: bytes, signature: str | None
) -> Mapping[str, list[str]]:
    """Return the form parameters of a correctly signed request.

    Raises:
        ProtocolError: the signature is missing or does not match.
    """
    if not signature:
        raise ProtocolError("missing X-Twilio-Signature")
    params = _MultiParams(parse_qs(form_body.decode(), keep_blank_values=True))
    # RequestValidator tries the URL with and without the default port.
    if not RequestValidator(auth_token).validate(url, params, signature):
        raise ProtocolError("X-Twilio-Signature does not match")
    return params


def event_from_params(
    params: Mapping[str, list[str]], call_id: str | None, now: dt.datetime
) -> CarrierEvent:
    """Build the `CarrierEvent` a verified callback describes."""

    def one(name: str) -> str:
        values = params.get(name) or [""]
        return values[0]

    sid = one("CallSid")
    if not sid:
        raise ProtocolError("status callback without CallSid")
    sip_code = one("SipResponseCode")
    status = map_call_status(one("CallStatus"), sip_code)
    sequence = int(one("SequenceNumber")) if one("SequenceNumber").isdigit() else None
    detail = f"sip {sip_code}" if sip_code else ""
    return CarrierEvent(
        provider="twilio",
        provider_call_id=sid,
        status=status,
        at=_parse_timestamp(one("Timestamp")) or now,
        call_id=call_id,
        sequence=sequence,
        detail=detail,
    )


def _parse_timestamp(text: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class SequenceFilter:
    """Drops callbacks older than one already passed on for the same call.

    Twilio numbers callbacks but does not deliver them in order (carriers.md
    2.4); a late `ringing` after `in-progress` carries no news. Duplicates
    and stale events are dropped; the memory is bounded.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._latest: OrderedDict[str, int] = OrderedDict()

    def accept(self, event: CarrierEvent) -> bool:
        if event.sequence is None:
            return True
        latest = self._latest.get(event.provider_call_id)
        if latest is not None and event.sequence <= latest:
            return False
        self._latest[event.provider_call_id] = event.sequence
        self._latest.move_to_end(event.provider_call_id)
        while len(self._latest) > self._capacity:
            self._latest.popitem(last=False)
        return True


class TwilioStatusCallbacks:
    """Verifies, maps and forwards Twilio status callbacks to the sink."""

    def __init__(
        self,
        auth_token: str,
        public_url: str,
        sink: CarrierEventSink,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._auth_token = auth_token
        self._public_url = public_url
        self._sink = sink
        self._clock = clock
        self._sequences = SequenceFilter()

    def __repr__(self) -> str:
        return f"TwilioStatusCallbacks(public_url={self._public_url!r})"

    def verify(
        self, path_and_query: str, body: bytes, headers: Mapping[str, str]
    ) -> Mapping[str, list[str]]:
        """The form parameters of a correctly signed callback (Sans-I/O).

        Raises:
            ProtocolError: the signature is missing or wrong.
        """
        url = signature_url(self._public_url, path_and_query)
        signature = _header(headers, "x-twilio-signature")
        return verify_signature(self._auth_token, url, body, signature)

    def parse(
        self, path_and_query: str, params: Mapping[str, list[str]]
    ) -> CarrierEvent:
        """Map verified parameters to an event (Sans-I/O).

        Raises:
            ProtocolError: the callback lacks a CallSid or has an unknown status.
        """
        query = dict(parse_qsl(urlsplit(path_and_query).query))
        return event_from_params(params, query.get("call_id"), self._clock())

    async def handle(
        self, path_and_query: str, body: bytes, headers: Mapping[str, str]
    ) -> int:
        """Process one callback; answers the HTTP status for Twilio."""
        try:
            params = self.verify(path_and_query, body, headers)
        except (ProtocolError, UnicodeDecodeError) as exc:
            _warn.warning("twilio-signature", "refused Twilio callback: %s", exc)
            return 403
        try:
            event = self.parse(path_and_query, params)
        except ProtocolError as exc:
            _warn.warning("twilio-callback", "malformed Twilio callback: %s", exc)
            return 400

        if not self._sequences.accept(event):
            log.debug("stale Twilio callback %s dropped", event.provider_call_id)
            return 204
        if event.status in TERMINAL_STATUSES:
            log.info(
                "twilio call %s ended: %s %s",
                event.provider_call_id,
                event.status,
                event.detail,
                extra={"call_id": event.call_id},
            )
        await self._sink.carrier_event(event)
        return 204


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def twilio_status_handler(
    callbacks: TwilioStatusCallbacks, path: str = STATUS_PATH
) -> HTTPRouteHandler:
    """A Litestar POST handler serving `callbacks` at `path`."""

    @post(path, status_code=204, include_in_schema=False)
    async def twilio_status(request: Request[Any, Any, Any]) -> Response[None]:
        path_and_query = request.url.path
        if request.url.query:
            path_and_query += "?" + request.url.query
        body = await request.body()
        status = await callbacks.handle(path_and_query, body, dict(request.headers))
        return Response(content=None, status_code=status)

    return twilio_status
