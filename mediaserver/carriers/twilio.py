"""Twilio dialer: places and ends calls through the official `twilio` SDK.

The SDK is blocking (requests), so every REST call runs in a small thread
pool this dialer owns; the event loop never waits on the network. The media
leg is a bidirectional `<Connect><Stream>` whose per-call token travels as a
stream parameter (carriers.md 1.1), never in the URL.

Tests point the SDK at a loopback fake with `api_base`; nothing else in the
SDK is patched (carriers.md 2.6, the custom `HttpClient` route).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, VoiceResponse

from mediaserver.carriers.hangups import HungUpCalls
from mediaserver.controller.dialer import (
    CarrierEvent,
    CarrierStatus,
    DialRequest,
    DialResult,
)
from mediaserver.errors import CarrierError, ConfigError, ProtocolError
from mediaserver.logs import mask_number, mask_text

log = logging.getLogger(__name__)
# The SDK logs eight INFO lines per request; keep them for debugging only.
sdk_log = logging.getLogger(__name__ + ".sdk")
sdk_log.setLevel(logging.WARNING)

TWILIO_API = "https://api.twilio.com"
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]

# Twilio error codes meaning "this call is no longer live": hanging it up
# again has nothing left to do (21220: invalid call state for the update).
ALREADY_ENDED_CODES = frozenset({21220})

_STATUS_MAP = {
    "queued": CarrierStatus.INITIATED,
    "initiated": CarrierStatus.INITIATED,
    "ringing": CarrierStatus.RINGING,
    "in-progress": CarrierStatus.ANSWERED,
    "answered": CarrierStatus.ANSWERED,
    "completed": CarrierStatus.COMPLETED,
    "busy": CarrierStatus.BUSY,
    "no-answer": CarrierStatus.NO_ANSWER,
    "failed": CarrierStatus.FAILED,
    "canceled": CarrierStatus.CANCELED,
}

# A callee's "decline" reaches Twilio as SIP 603 and is reported as busy
# (or failed); the SIP code is the only way to tell it apart.
_DECLINE_SIP_CODES = frozenset({"603", "607", "608"})


def map_call_status(call_status: str, sip_code: str = "") -> CarrierStatus:
    """Map Twilio's CallStatus (plus SipResponseCode) to ours (carriers.md 2.3).

    Raises:
        ProtocolError: an unknown CallStatus.
    """
    try:
        status = _STATUS_MAP[call_status]
    except KeyError:
        raise ProtocolError(f"unknown Twilio CallStatus {call_status!r}") from None
    if status in (CarrierStatus.BUSY, CarrierStatus.FAILED) and (
        sip_code in _DECLINE_SIP_CODES
    ):
        return CarrierStatus.DECLINED
    return status


@dataclass(frozen=True)
class TwilioCredentials:
    """Account SID and auth token; the token never appears in a repr or log."""

    account_sid: str
    auth_token: str = field(repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TwilioCredentials:
        """Read TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.

        Raises:
            ConfigError: either variable is missing.
        """
        env = dict(os.environ) if env is None else env
        sid = env.get("TWILIO_ACCOUNT_SID", "")
        token = env.get("TWILIO_AUTH_TOKEN", "")
        if not sid or not token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required")
        return cls(account_sid=sid, auth_token=token)

    def __repr__(self) -> str:
        return f"TwilioCredentials(account_sid={self.account_sid!r}, auth_token=***)"


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends the SDK's api.twilio.com requests to `api_base` instead.

    For loopback fakes only: a URL that does not start with the Twilio API
    prefix is refused rather than sent somewhere unexpected.
    """

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=sdk_log)
        self._api_base = api_base.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if not url.startswith(TWILIO_API + "/"):
            raise CarrierError(f"refusing unexpected Twilio URL {url}", retryable=False)
        target = self._api_base + url[len(TWILIO_API) :]
        response: Response = super().request(
            method, target, params, data, headers, auth, timeout, allow_redirects
        )
        return response


def stream_twiml(media_url: str, token: str) -> str:
    """`<Connect><Stream>` TwiML carrying the per-call token as a parameter."""
    if urlsplit(media_url).query:
        raise ConfigError("the media stream URL must not carry a query string")
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=media_url)
    stream.parameter(name="token", value=token)
    response.append(connect)
    return str(response)


def callback_url_for(status_callback_url: str, call_id: str) -> str:
    """Add our call id to the status-callback URL so each callback names it."""
    parts = urlsplit(status_callback_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "call_id"]
    query.append(("call_id", call_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def carrier_error(exc: Exception, action: str) -> CarrierError:
    """Translate an SDK or transport failure, saying whether a retry can help."""
    if isinstance(exc, CarrierError):
        return exc
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status or 0)
        retryable = status >= 500 or status == 429
        text = getattr(exc, "msg", None) or getattr(exc, "detail", "") or str(exc)
        return CarrierError(
            f"twilio {action} failed: HTTP {status} code {exc.code}: {text}",
            retryable=retryable,
        )
    if isinstance(exc, requests.RequestException | OSError):
        return CarrierError(f"twilio {action} unreachable: {exc}", retryable=True)
    return CarrierError(f"twilio {action} failed: {exc!r}", retryable=False)


def _already_ended(exc: Exception) -> bool:
    return isinstance(exc, TwilioRestException) and (
        exc.code in ALREADY_ENDED_CODES or exc.status == 404
    )


class TwilioDialer:
    """`Dialer` for Twilio Programmable Voice."""

    name = "twilio"

    def __init__(
        self,
        credentials: TwilioCredentials,
        *,
        api_base: str | None = None,
        timeout_s: float = 10.0,
        max_workers: int = 8,
    ) -> None:
        self._credentials = credentials
        if api_base is None:
            http_client: TwilioHttpClient = TwilioHttpClient(
                timeout=timeout_s, logger=sdk_log
            )
        else:
            http_client = RedirectingHttpClient(api_base, timeout_s)
        self._client = Client(
            credentials.account_sid, credentials.auth_token, http_client=http_client
        )
        if api_base is not None:
            # Edge/region settings rewrite the host (carriers.md 2.6).
            self._client.edge = None
            self._client.region = None
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="twilio-rest")
        self._hung_up = HungUpCalls()

    async def dial(self, request: DialRequest) -> DialResult:
        """Create the call; raises `CarrierError` with `retryable` set."""
        try:
            twiml = stream_twiml(request.media_url, request.media_token)
        except ConfigError as exc:
            raise CarrierError(f"twilio dial not sent: {exc}", retryable=False) from exc
        kwargs: dict[str, Any] = {
            "to": request.to_number,
            "from_": request.from_number,
            "twiml": twiml,
            "timeout": request.ring_timeout_s,
            "time_limit": request.max_call_s,
        }
        if request.status_callback_url:
            kwargs["status_callback"] = callback_url_for(
                request.status_callback_url, request.call_id
            )
            kwargs["status_callback_event"] = STATUS_EVENTS
            kwargs["status_callback_method"] = "POST"

        try:
            call = await self._run(lambda: self._client.calls.create(**kwargs))
        except Exception as exc:
            error = carrier_error(exc, "dial")
            log.warning(
                "twilio dial of %s failed: %s",
                mask_number(request.to_number),
                mask_text(str(error)),  # carrier messages may quote the number
                extra={"call_id": request.call_id},
            )
            raise error from exc

        sid = str(call.sid)
        log.info(
            "twilio dialed %s as %s",
            mask_number(request.to_number),
            sid,
            extra={"call_id": request.call_id, "provider_call_id": sid},
        )
        return DialResult(provider_call_id=sid)

    async def hangup(self, provider_call_id: str) -> None:
        """End the call once; a call that has already ended is success."""
        await self._hung_up.hang_up(
            provider_call_id,
            lambda: self._run(
                lambda: self._client.calls(provider_call_id).update(status="completed")
            ),
            carrier="twilio",
            already_ended=_already_ended,
            to_error=carrier_error,
        )

    async def lookup(self, provider_call_id: str) -> CarrierEvent | None:
        """Where the call stands at Twilio, or None if Twilio does not know it.

        A fetched call carries no SIP code, so a decline reads as busy here.
        """
        try:
            call = await self._run(lambda: self._client.calls(provider_call_id).fetch())
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise carrier_error(exc, "lookup") from exc
        except Exception as exc:
            raise carrier_error(exc, "lookup") from exc
        status = getattr(call.status, "value", call.status)
        try:
            mapped = map_call_status(str(status))
        except ProtocolError as exc:
            raise CarrierError(str(exc), retryable=False) from exc
        at = call.end_time or call.date_updated or dt.datetime.now(dt.UTC)
        return CarrierEvent(
            provider="twilio",
            provider_call_id=provider_call_id,
            status=mapped,
            at=at,
            detail="looked up",
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn)
