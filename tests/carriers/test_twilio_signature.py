"""Twilio X-Twilio-Signature checks, with the SDK's published test vectors."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from mediaserver.api.callbacks_twilio import verify_signature
from mediaserver.errors import ProtocolError
from mediaserver.testing.fake_twilio import twilio_signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def body(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


def test_vector_one_validates_and_fake_signs_the_same() -> None:
    expected = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature(TOKEN, URL, PARAMS) == expected
    params = verify_signature(TOKEN, URL, body(list(PARAMS.items())), expected)
    assert params["CallSid"] == ["CA1234567890ABCDE"]


def test_repeated_keys_sorted_and_deduplicated() -> None:
    pairs = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    params = verify_signature(TOKEN, URL, body(pairs), "IK+Dwps556ElfBT0I3Rgjkr1wJU=")
    assert params["Digits"] == ["5678", "1234", "1234"]


def test_signature_made_with_default_port_is_accepted() -> None:
    signature = "kvajT1Ptam85bY51eRf/AJRuM3w="
    verify_signature(TOKEN, URL, body(list(PARAMS.items())), signature)
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    verify_signature(TOKEN, with_port, body(list(PARAMS.items())), signature)


def test_http_url_without_port_matches_port_80_signature() -> None:
    url = "http://mycompany.com/myapp.php?foo=1&bar=2"
    signature = "0ZXoZLH/DfblKGATFgpif+LLRf4="
    verify_signature(TOKEN, url, body(list(PARAMS.items())), signature)


@pytest.mark.parametrize(
    ("change", "signature"),
    [
        ("token", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("param", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("url", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("none", ""),
        ("none", "not-base64"),
    ],
)
def test_wrong_or_missing_signature_is_refused(change: str, signature: str) -> None:
    token, url, params = TOKEN, URL, dict(PARAMS)
    if change == "token":
        token = "54321"
    elif change == "param":
        params["To"] = "+18005551213"
    elif change == "url":
        url = URL.replace("foo=1", "foo=2")
    with pytest.raises(ProtocolError):
        verify_signature(token, url, body(list(params.items())), signature or None)
