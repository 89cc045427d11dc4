"""Dialing and hanging up through the official twilio SDK against the fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import msgspec
import pytest
import pytest_asyncio

from mediaserver.carriers.twilio import TwilioCredentials, TwilioDialer
from mediaserver.controller.dialer import CarrierStatus, DialRequest
from mediaserver.errors import CarrierError, ConfigError
from mediaserver.testing.fake_twilio import CallScript, DialError, FakeTwilio
from tests.carriers.helpers import dial_refused

SID = "AC" + "1" * 32
TOKEN = "secret-auth-token"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(SID, TOKEN, default=CallScript(ring_s=5, hold_s=5))
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture
async def dialer(fake: FakeTwilio) -> AsyncIterator[TwilioDialer]:
    dialer = TwilioDialer(TwilioCredentials(SID, TOKEN), api_base=fake.api_base)
    yield dialer
    await dialer.close()


def request(to: str = "+15550001111", call_id: str = "call-1") -> DialRequest:
    return DialRequest(
        call_id=call_id,
        from_number="+15550002222",
        to_number=to,
        media_url="wss://media.example.test/twilio",
        media_token="tok.123.mac",
        status_callback_url="http://127.0.0.1:9/callbacks/twilio/status",
        ring_timeout_s=25,
        max_call_s=300,
    )


async def test_dial_sends_what_twilio_expects(
    fake: FakeTwilio, dialer: TwilioDialer
) -> None:
    result = await dialer.dial(request())

    call = fake.calls[result.provider_call_id]
    assert result.provider_call_id.startswith("CA")
    assert call.one("To") == "+15550001111"
    assert call.one("From") == "+15550002222"
    assert call.one("Timeout") == "25"
    assert call.one("TimeLimit") == "300"
    assert call.params["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    callback = call.one("StatusCallback")
    assert parse_qs(callback.split("?", 1)[1]) == {"call_id": ["call-1"]}
    twiml = call.one("Twiml")
    assert '<Stream url="wss://media.example.test/twilio">' in twiml
    assert '<Parameter name="token" value="tok.123.mac" />' in twiml
    assert "<Connect>" in twiml


async def test_hangup_is_sent_once(fake: FakeTwilio, dialer: TwilioDialer) -> None:
    result = await dialer.dial(request())

    await dialer.hangup(result.provider_call_id)
    await dialer.hangup(result.provider_call_id)

    call = fake.calls[result.provider_call_id]
    assert call.hangup_requests == 1
    assert call.hangup.is_set()


async def test_hangup_of_an_ended_call_is_success(fake: FakeTwilio) -> None:
    fake.scripts["+15550008888"] = CallScript(outcome="busy", ring_s=0.01)
    dialer = TwilioDialer(TwilioCredentials(SID, TOKEN), api_base=fake.api_base)
    try:
        result = await dialer.dial(request(to="+15550008888"))
        async with asyncio.timeout(5):
            await fake.wait_ended()
        await dialer.hangup(result.provider_call_id)  # Twilio answers 21220
    finally:
        await dialer.close()
    assert fake.calls[result.provider_call_id].hangup_requests == 1
    assert fake.calls[result.provider_call_id].status == "busy"


async def test_a_failed_hangup_can_be_tried_again(fake: FakeTwilio) -> None:
    dialer = TwilioDialer(TwilioCredentials(SID, "wrong"), api_base=fake.api_base)
    try:
        for _ in range(2):
            with pytest.raises(CarrierError):
                await dialer.hangup("CA" + "e" * 32)
    finally:
        await dialer.close()
    assert len(fake.requests) == 2


async def test_lookup_reports_the_carrier_status(
    fake: FakeTwilio, dialer: TwilioDialer
) -> None:
    result = await dialer.dial(request())
    await dialer.hangup(result.provider_call_id)
    async with asyncio.timeout(5):
        await fake.wait_ended()
    event = await dialer.lookup(result.provider_call_id)
    assert event is not None
    assert event.status is CarrierStatus.CANCELED
    assert event.provider_call_id == result.provider_call_id
    assert await dialer.lookup("CA" + "f" * 32) is None


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (DialError(400, 21211, "Invalid 'To' Phone Number"), False),
        (DialError(403, 21215, "Geo permission not enabled"), False),
        (DialError(429, 20429, "Too Many Requests"), True),
        (DialError(500, 20500, "Internal Server Error"), True),
        (DialError(503, 20503, "Service Unavailable"), True),
    ],
)
async def test_dial_errors_are_classified(
    fake: FakeTwilio, dialer: TwilioDialer, error: DialError, retryable: bool
) -> None:
    fake.scripts["+15550009999"] = CallScript(dial_error=error)
    with pytest.raises(CarrierError) as caught:
        await dialer.dial(request(to="+15550009999"))
    assert caught.value.retryable is retryable
    assert error.message in str(caught.value)
    assert str(error.code) in str(caught.value)


async def test_wrong_credentials_are_not_retryable(fake: FakeTwilio) -> None:
    dialer = TwilioDialer(TwilioCredentials(SID, "wrong"), api_base=fake.api_base)
    refused = await dial_refused(dialer, request())
    assert not refused.retryable
    assert "401" in str(refused)


async def test_unreachable_api_is_retryable() -> None:
    dialer = TwilioDialer(TwilioCredentials(SID, TOKEN), api_base="http://127.0.0.1:9")
    refused = await dial_refused(dialer, request())
    assert refused.retryable


def test_credentials_come_from_env_and_never_show_the_token() -> None:
    creds = TwilioCredentials.from_env(
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
    )
    assert creds.auth_token == TOKEN
    assert TOKEN not in repr(creds)
    assert TOKEN not in str(creds)
    with pytest.raises(ConfigError):
        TwilioCredentials.from_env({"TWILIO_ACCOUNT_SID": SID})


async def test_media_url_with_a_query_is_refused_before_dialing(
    fake: FakeTwilio, dialer: TwilioDialer
) -> None:
    bad = msgspec.structs.replace(request(), media_url="wss://m.example.test/t?x=1")
    with pytest.raises(CarrierError) as caught:
        await dialer.dial(bad)
    assert not caught.value.retryable
    assert fake.calls == {}


async def test_refused_dial_logs_no_phone_number(
    fake: FakeTwilio, dialer: TwilioDialer, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(CarrierError) as caught:
        await dialer.dial(request(to="2125550123"))  # no +: Twilio quotes it back
    assert "2125550123" in str(caught.value)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "twilio dial of" in logged
    assert "2125550123" not in logged
