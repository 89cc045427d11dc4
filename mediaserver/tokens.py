"""Per-call signed tokens for media URLs and stream parameters.

A token is `<call_id>.<expiry unix seconds>.<base64url HMAC-SHA256>`; the
MAC covers the call id, the expiry and a purpose string, so a media token
cannot be replayed as an agent or callback token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from mediaserver.errors import TokenError


def _mac(secret: bytes, purpose: str, call_id: str, expiry: int) -> str:
    msg = f"{purpose}|{call_id}|{expiry}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(
    secret: bytes, call_id: str, *, ttl_s: int = 3600, purpose: str = "media"
) -> str:
    """Sign `call_id` for `ttl_s` seconds."""
    if "." in call_id:
        raise ValueError("call ids must not contain '.'")
    expiry = int(time.time()) + ttl_s
    return f"{call_id}.{expiry}.{_mac(secret, purpose, call_id, expiry)}"


def verify(
    secret: bytes,
    token: str | None,
    *,
    purpose: str = "media",
    now: float | None = None,
) -> str:
    """Return the call id a valid token carries.

    Raises:
        TokenError: the token is missing, malformed, tampered with or expired.
    """
    if not token:
        raise TokenError("missing call token")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise TokenError("malformed call token")
    call_id, expiry_text, mac = parts
    expiry = int(expiry_text)
    if not hmac.compare_digest(mac, _mac(secret, purpose, call_id, expiry)):
        raise TokenError("call token signature does not match")
    if (now if now is not None else time.time()) > expiry:
        raise TokenError("call token expired")
    return call_id
