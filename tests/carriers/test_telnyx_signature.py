"""Telnyx Ed25519 webhook signatures and the freshness window."""

from __future__ import annotations

import base64
import json

import pytest
from nacl.signing import SigningKey

from mediaserver.api.callbacks_telnyx import load_public_key, verify_signature
from mediaserver.errors import ConfigError, ProtocolError
from mediaserver.testing.fake_telnyx import sign_webhook

KEY = SigningKey(b"\x07" * 32)
PUBLIC = base64.b64encode(bytes(KEY.verify_key)).decode()
BODY = json.dumps({"data": {"event_type": "call.answered"}}).encode()
NOW = 1_790_000_000


def headers(timestamp: int, signature: str) -> dict[str, str]:
    return {"Telnyx-Signature-Ed25519": signature, "Telnyx-Timestamp": str(timestamp)}


def test_good_signature_passes() -> None:
    signature = sign_webhook(KEY, NOW, BODY)
    verify_signature(load_public_key(PUBLIC), BODY, headers(NOW, signature), now=NOW)


def test_signature_is_over_timestamp_and_raw_body() -> None:
    # An independent signing with the documented message shape must verify.
    message = f"{NOW}|{BODY.decode()}".encode()
    signature = base64.b64encode(KEY.sign(message).signature).decode()
    verify_signature(load_public_key(PUBLIC), BODY, headers(NOW, signature), now=NOW)


@pytest.mark.parametrize("case", ["body", "timestamp", "other_key", "garbage", "none"])
def test_bad_signatures_are_refused(case: str) -> None:
    key = load_public_key(PUBLIC)
    signature = sign_webhook(KEY, NOW, BODY)
    body, stamp, hdrs = BODY, NOW, None
    if case == "body":
        body = BODY.replace(b"answered", b"hangup")
    elif case == "timestamp":
        stamp = NOW + 1
    elif case == "other_key":
        signature = sign_webhook(SigningKey(b"\x08" * 32), NOW, BODY)
    elif case == "garbage":
        signature = "not base64!"
    elif case == "none":
        hdrs = {"telnyx-timestamp": str(NOW)}
    with pytest.raises(ProtocolError):
        verify_signature(key, body, hdrs or headers(stamp, signature), now=NOW)


@pytest.mark.parametrize(
    ("age", "ok"),
    [(0, True), (299, True), (-299, True), (301, False), (-301, False), (86400, False)],
)
def test_timestamp_window(age: int, ok: bool) -> None:
    stamp = NOW - age
    signature = sign_webhook(KEY, stamp, BODY)
    key = load_public_key(PUBLIC)
    if ok:
        verify_signature(key, BODY, headers(stamp, signature), now=NOW)
    else:
        with pytest.raises(ProtocolError):
            verify_signature(key, BODY, headers(stamp, signature), now=NOW)


@pytest.mark.parametrize("bad", ["", "abc", base64.b64encode(b"short").decode()])
def test_bad_public_key_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        load_public_key(bad)
