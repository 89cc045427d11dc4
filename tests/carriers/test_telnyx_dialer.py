"""Dialing and hanging up through the official telnyx SDK against the fake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mediaserver.carriers.telnyx import (
    TelnyxCredentials,
    TelnyxDialer,
    decode_client_state,
)
from mediaserver.controller.dialer import DialRequest
from mediaserver.errors import CarrierError, ConfigError
from mediaserver.testing.fake_telnyx import FakeTelnyx
from mediaserver.testing.fake_twilio import CallScript, DialError
from tests.carriers.helpers import dial_refused

API_KEY = "KEY0123456789"
CREDS = TelnyxCredentials(api_key=API_KEY, connection_id="conn-42")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTelnyx]:
    fake = FakeTelnyx(API_KEY, default=CallScript(ring_s=5, hold_s=5))
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture
async def dialer(fake: FakeTelnyx) -> AsyncIterator[TelnyxDialer]:
    dialer = TelnyxDialer(CREDS, api_base=fake.api_base)
    yield dialer
    await dialer.close()


def request(to: str = "+15550001111") -> DialRequest:
    return DialRequest(
        call_id="call-3",
        from_number="+15550002222",
        to_number=to,
        media_url="wss://media.example.test/telnyx",
        media_token="tok.9.mac",
        status_callback_url="http://127.0.0.1:9/callbacks/telnyx/webhook",
        ring_timeout_s=20,
        max_call_s=120,
    )


async def test_dial_sends_what_telnyx_expects(
    fake: FakeTelnyx, dialer: TelnyxDialer
) -> None:
    result = await dialer.dial(request())

    body = fake.calls[result.provider_call_id].body
    assert result.provider_call_id.startswith("v3:")
    assert body["connection_id"] == "conn-42"
    assert body["from"] == "+15550002222"
    assert body["to"] == "+15550001111"
    assert body["stream_url"] == "wss://media.example.test/telnyx"
    assert body["stream_track"] == "inbound_track"
    assert body["stream_bidirectional_mode"] == "rtp"
    assert body["stream_bidirectional_codec"] == "PCMU"
    assert body["stream_auth_token"] == "tok.9.mac"
    assert body["timeout_secs"] == 20
    assert body["time_limit_secs"] == 120
    assert body["webhook_url"] == "http://127.0.0.1:9/callbacks/telnyx/webhook"
    assert decode_client_state(body["client_state"]) == "call-3"


async def test_hangup_is_sent_once(fake: FakeTelnyx, dialer: TelnyxDialer) -> None:
    result = await dialer.dial(request())
    await dialer.hangup(result.provider_call_id)
    await dialer.hangup(result.provider_call_id)
    async with asyncio.timeout(5):
        await fake.wait_ended()

    call = fake.calls[result.provider_call_id]
    assert call.hangup_requests == 1
    assert call.webhooks[-1]["data"]["payload"]["hangup_cause"] == "originator_cancel"


async def test_hangup_of_an_ended_call_is_success(fake: FakeTelnyx) -> None:
    fake.scripts["+15550008888"] = CallScript(outcome="busy", ring_s=0.01)
    dialer = TelnyxDialer(CREDS, api_base=fake.api_base)
    try:
        result = await dialer.dial(request(to="+15550008888"))
        async with asyncio.timeout(5):
            await fake.wait_ended()
        await dialer.hangup(result.provider_call_id)  # Telnyx answers 90018
    finally:
        await dialer.close()
    assert fake.calls[result.provider_call_id].hangup_requests == 1


async def test_hangup_of_unknown_call_is_an_error(dialer: TelnyxDialer) -> None:
    with pytest.raises(CarrierError) as caught:
        await dialer.hangup("v3:nope")
    assert not caught.value.retryable
    assert "404" in str(caught.value)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (DialError(422, 10016, "Invalid phone number"), False),
        (DialError(403, 10010, "Outbound profile forbids this destination"), False),
        (DialError(429, 10011, "Too many requests"), True),
        (DialError(500, 10007, "Unexpected error"), True),
        (DialError(503, 10008, "Service unavailable"), True),
    ],
)
async def test_dial_errors_are_classified(
    fake: FakeTelnyx, dialer: TelnyxDialer, error: DialError, retryable: bool
) -> None:
    fake.scripts["+15550009999"] = CallScript(dial_error=error)
    with pytest.raises(CarrierError) as caught:
        await dialer.dial(request(to="+15550009999"))
    assert caught.value.retryable is retryable
    assert error.message in str(caught.value)
    assert str(error.code) in str(caught.value)
    assert fake.calls == {}


async def test_wrong_key_is_refused_and_not_retryable(fake: FakeTelnyx) -> None:
    dialer = TelnyxDialer(
        TelnyxCredentials(api_key="wrong", connection_id="c"), api_base=fake.api_base
    )
    refused = await dial_refused(dialer, request())
    assert not refused.retryable
    assert "401" in str(refused)
    assert fake.requests[-1].headers["authorization"] == "Bearer wrong"


async def test_unreachable_api_is_retryable() -> None:
    dialer = TelnyxDialer(CREDS, api_base="http://127.0.0.1:9/v2")
    refused = await dial_refused(dialer, request())
    assert refused.retryable


async def test_dial_sends_json_with_bearer_auth(
    fake: FakeTelnyx, dialer: TelnyxDialer
) -> None:
    await dialer.dial(request())
    sent = fake.requests[-1]
    assert sent.path == "/v2/calls"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert json.loads(sent.body)["to"] == "+15550001111"


def test_credentials_from_env_hide_the_api_key() -> None:
    creds = TelnyxCredentials.from_env(
        {"TELNYX_API_KEY": API_KEY, "TELNYX_CONNECTION_ID": "c1"}
    )
    assert creds.api_key == API_KEY
    assert API_KEY not in repr(creds)
    with pytest.raises(ConfigError):
        TelnyxCredentials.from_env({"TELNYX_API_KEY": API_KEY})
