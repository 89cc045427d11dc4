"""Telnyx dialer: Call Control v2 through the official `telnyx` SDK.

The dial asks Telnyx to open a bidirectional media stream (raw PCMU back
to the caller) to our endpoint with the per-call token as the stream's auth
token (carriers.md 3.2, 3.5). Our call id rides in `client_state`, which
Telnyx echoes in every webhook.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import telnyx

from mediaserver.carriers.hangups import HungUpCalls
from mediaserver.controller.dialer import DialRequest, DialResult
from mediaserver.errors import CarrierError, ConfigError
from mediaserver.logs import mask_number, mask_text

log = logging.getLogger(__name__)

TELNYX_API = "https://api.telnyx.com/v2"
ALREADY_ENDED_CODES = frozenset({"90018"})


@dataclass(frozen=True)
class TelnyxCredentials:
    """API key, webhook public key and Call Control connection id.

    The API key never appears in a repr or a log line.
    """

    api_key: str = field(repr=False)
    connection_id: str
    public_key: str = ""  # base64 Ed25519 key for webhook signatures

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TelnyxCredentials:
        """Read TELNYX_API_KEY, TELNYX_CONNECTION_ID and TELNYX_PUBLIC_KEY.

        Raises:
            ConfigError: the API key or connection id is missing.
        """
        env = dict(os.environ) if env is None else env
        api_key = env.get("TELNYX_API_KEY", "")
        connection_id = env.get("TELNYX_CONNECTION_ID", "")
        if not api_key or not connection_id:
            raise ConfigError("TELNYX_API_KEY and TELNYX_CONNECTION_ID are required")
        public_key = env.get("TELNYX_PUBLIC_KEY", "")
        return cls(api_key=api_key, connection_id=connection_id, public_key=public_key)

    def __repr__(self) -> str:
        return (
            f"TelnyxCredentials(api_key=***, connection_id={self.connection_id!r}, "
            f"public_key={self.public_key!r})"
        )


def encode_client_state(call_id: str) -> str:
    return base64.b64encode(call_id.encode()).decode()


def decode_client_state(client_state: str | None) -> str | None:
    """Our call id from a webhook's `client_state`, or None if it has none."""
    if not client_state:
        return None
    try:
        return base64.b64decode(client_state, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def error_codes(exc: telnyx.APIStatusError) -> set[str]:
    """The `errors[].code` values of a Telnyx error body."""
    body = exc.body
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}


def _error_text(exc: telnyx.APIStatusError) -> str:
    body = exc.body
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        title, detail = first.get("title") or "", first.get("detail") or ""
        text = title if detail in ("", title) else f"{title}: {detail}"
        return f"{first.get('code')} {text}"
    return str(exc)


def carrier_error(exc: Exception, action: str) -> CarrierError:
    """Translate an SDK failure, saying whether a retry can help."""
    if isinstance(exc, telnyx.APIStatusError):
        status = exc.status_code
        retryable = status >= 500 or status in (408, 429)
        return CarrierError(
            f"telnyx {action} failed: HTTP {status}: {_error_text(exc).strip()}",
            retryable=retryable,
        )
    if isinstance(exc, telnyx.APIConnectionError | httpx.HTTPError | OSError):
        return CarrierError(f"telnyx {action} unreachable: {exc}", retryable=True)
    return CarrierError(f"telnyx {action} failed: {exc!r}", retryable=False)


def _already_ended(exc: Exception) -> bool:
    return isinstance(exc, telnyx.APIStatusError) and bool(
        error_codes(exc) & ALREADY_ENDED_CODES
    )


class TelnyxDialer:
    """`Dialer` for Telnyx Call Control."""

    name = "telnyx"

    def __init__(
        self,
        credentials: TelnyxCredentials,
        *,
        api_base: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._credentials = credentials
        # Retries belong to the dispatcher, which knows the campaign's policy.
        self._client = telnyx.AsyncTelnyx(
            api_key=credentials.api_key,
            base_url=api_base or TELNYX_API,
            max_retries=0,
            timeout=timeout_s,
        )
        self._hung_up = HungUpCalls()

    async def dial(self, request: DialRequest) -> DialResult:
        """Dial; raises `CarrierError` with `retryable` set."""
        kwargs: dict[str, Any] = {
            "connection_id": self._credentials.connection_id,
            "from_": request.from_number,
            "to": request.to_number,
            "stream_url": request.media_url,
            "stream_track": "inbound_track",
            "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": "PCMU",
            "stream_auth_token": request.media_token,
            "timeout_secs": request.ring_timeout_s,
            "time_limit_secs": request.max_call_s,
            "client_state": encode_client_state(request.call_id),
            "command_id": request.call_id,  # Telnyx ignores a repeated command
        }
        if request.status_callback_url:
            kwargs["webhook_url"] = request.status_callback_url
            kwargs["webhook_url_method"] = "POST"

        try:
            response = await self._client.calls.dial(**kwargs)
        except Exception as exc:
            error = carrier_error(exc, "dial")
            log.warning(
                "telnyx dial of %s failed: %s",
                mask_number(request.to_number),
                mask_text(str(error)),  # carrier messages may quote the number
                extra={"call_id": request.call_id},
            )
            raise error from exc

        if response.data is None or not response.data.call_control_id:
            raise CarrierError(
                "telnyx dial answered without a call id", retryable=False
            )
        call_control_id = str(response.data.call_control_id)
        log.info(
            "telnyx dialed %s as %s",
            mask_number(request.to_number),
            call_control_id,
            extra={"call_id": request.call_id, "provider_call_id": call_control_id},
        )
        return DialResult(provider_call_id=call_control_id)

    async def hangup(self, provider_call_id: str) -> None:
        """Hang up once; Telnyx's "call has already ended" (90018) is success."""
        await self._hung_up.hang_up(
            provider_call_id,
            lambda: self._client.calls.actions.hangup(call_control_id=provider_call_id),
            carrier="telnyx",
            already_ended=_already_ended,
            to_error=carrier_error,
        )

    async def close(self) -> None:
        await self._client.close()
