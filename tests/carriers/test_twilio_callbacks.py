"""Twilio status callbacks: signed by the fake, verified and mapped by us."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
import pytest_asyncio

from mediaserver.api.callbacks_twilio import (
    STATUS_PATH,
    SequenceFilter,
    TwilioStatusCallbacks,
    twilio_status_handler,
)
from mediaserver.carriers.twilio import (
    TwilioCredentials,
    TwilioDialer,
    map_call_status,
)
from mediaserver.controller.dialer import CarrierEvent, CarrierStatus, DialRequest
from mediaserver.errors import ProtocolError
from mediaserver.testing.fake_twilio import CallScript, FakeTwilio, twilio_signature
from tests.carriers.helpers import AppServer, RecordingSink, callback_dial

SID = "AC" + "2" * 32
TOKEN = "callback-token"
S = CarrierStatus


@pytest.mark.parametrize(
    ("call_status", "sip", "expected"),
    [
        ("initiated", "", S.INITIATED),
        ("ringing", "", S.RINGING),
        ("in-progress", "", S.ANSWERED),
        ("completed", "200", S.COMPLETED),
        ("busy", "486", S.BUSY),
        ("busy", "603", S.DECLINED),
        ("failed", "603", S.DECLINED),
        ("no-answer", "487", S.NO_ANSWER),
        ("failed", "503", S.FAILED),
        ("canceled", "487", S.CANCELED),
    ],
)
def test_status_mapping(call_status: str, sip: str, expected: CarrierStatus) -> None:
    assert map_call_status(call_status, sip) is expected


def test_unknown_status_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        map_call_status("exploded")


def test_sequence_filter_drops_stale_and_duplicate_events() -> None:
    at = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)

    def ev(seq: int, status: CarrierStatus) -> CarrierEvent:
        return CarrierEvent(
            provider="twilio",
            provider_call_id="CA1",
            status=status,
            at=at,
            sequence=seq,
        )

    seen = SequenceFilter()
    assert seen.accept(ev(0, S.INITIATED))
    assert seen.accept(ev(2, S.ANSWERED))
    assert not seen.accept(ev(1, S.RINGING))
    assert not seen.accept(ev(2, S.ANSWERED))
    assert seen.accept(ev(3, S.COMPLETED))


@pytest_asyncio.fixture
async def setup(
    app_server: AppServer, sink: RecordingSink
) -> AsyncIterator[tuple[FakeTwilio, TwilioDialer, str, TwilioStatusCallbacks]]:
    base = app_server.base_url
    callbacks = TwilioStatusCallbacks(TOKEN, base, sink)
    await app_server.serve([twilio_status_handler(callbacks)])
    fake = FakeTwilio(SID, TOKEN, default=CallScript(ring_s=0.01, hold_s=0.01))
    await fake.start()
    dialer = TwilioDialer(TwilioCredentials(SID, TOKEN), api_base=fake.api_base)
    yield fake, dialer, base, callbacks
    await dialer.close()
    await fake.close()


def dial_request(to: str, base: str, call_id: str) -> DialRequest:
    return callback_dial("twilio", to, base + STATUS_PATH, call_id)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("answer", [S.INITIATED, S.RINGING, S.ANSWERED, S.COMPLETED]),
        ("busy", [S.INITIATED, S.RINGING, S.BUSY]),
        ("decline", [S.INITIATED, S.RINGING, S.DECLINED]),
        ("no_answer", [S.INITIATED, S.RINGING, S.NO_ANSWER]),
        ("fail", [S.INITIATED, S.FAILED]),
    ],
)
async def test_signed_callbacks_reach_the_sink_in_order(
    setup: tuple[FakeTwilio, TwilioDialer, str, TwilioStatusCallbacks],
    sink: RecordingSink,
    outcome: str,
    expected: list[CarrierStatus],
) -> None:
    fake, dialer, base, _ = setup
    fake.scripts["+15550003333"] = CallScript(outcome=outcome, ring_s=0.01, hold_s=0.01)

    result = await dialer.dial(dial_request("+15550003333", base, "call-7"))
    async with asyncio.timeout(10):
        await fake.wait_ended()

    assert sink.statuses(result.provider_call_id) == expected
    assert all(e.call_id == "call-7" for e in sink.events)
    assert [e.sequence for e in sink.events] == list(range(len(expected)))
    assert set(fake.callback_statuses) == {204}


async def test_hangup_while_ringing_ends_canceled(
    setup: tuple[FakeTwilio, TwilioDialer, str, TwilioStatusCallbacks],
    sink: RecordingSink,
) -> None:
    fake, dialer, base, _ = setup
    fake.scripts["+15550004444"] = CallScript(ring_s=5)

    result = await dialer.dial(dial_request("+15550004444", base, "call-8"))
    await sink.wait_for(2)
    await dialer.hangup(result.provider_call_id)
    async with asyncio.timeout(10):
        await fake.wait_ended()

    assert sink.statuses(result.provider_call_id)[-1] is S.CANCELED
    assert fake.calls[result.provider_call_id].hangup_requests == 1


async def test_forged_missing_and_replayed_callbacks(
    setup: tuple[FakeTwilio, TwilioDialer, str, TwilioStatusCallbacks],
    sink: RecordingSink,
) -> None:
    _, _, base, callbacks = setup
    path = STATUS_PATH + "?call_id=call-9"
    params = {"CallSid": "CA9", "CallStatus": "ringing", "SequenceNumber": "1"}
    body = urlencode(params).encode()
    good = twilio_signature(TOKEN, base + path, params)
    forged = twilio_signature("not-the-token", base + path, params)

    assert await callbacks.handle(path, body, {}) == 403
    assert await callbacks.handle(path, body, {"X-Twilio-Signature": forged}) == 403
    other_call = STATUS_PATH + "?call_id=call-10"
    assert await callbacks.handle(other_call, body, {"X-Twilio-Signature": good}) == 403
    assert sink.events == []

    assert await callbacks.handle(path, body, {"X-Twilio-Signature": good}) == 204
    assert await callbacks.handle(path, body, {"X-Twilio-Signature": good}) == 204
    assert len(sink.events) == 1
    assert sink.events[0].call_id == "call-9"


async def test_signed_but_malformed_callback_is_a_bad_request(
    setup: tuple[FakeTwilio, TwilioDialer, str, TwilioStatusCallbacks],
    sink: RecordingSink,
) -> None:
    _, _, base, callbacks = setup
    params = {"CallSid": "CA9", "CallStatus": "exploded"}
    signature = twilio_signature(TOKEN, base + STATUS_PATH, params)
    status = await callbacks.handle(
        STATUS_PATH, urlencode(params).encode(), {"x-twilio-signature": signature}
    )
    assert status == 400
    assert sink.events == []


async def test_late_and_redelivered_callbacks_change_nothing(
    setup: tuple[FakeTwilio, TwilioDialer, str, TwilioStatusCallbacks],
    sink: RecordingSink,
) -> None:
    fake, dialer, base, _ = setup
    fake.scripts["+15550005555"] = CallScript(
        ring_s=0.01, hold_s=0.01, late_ringing=True, redeliver=True
    )

    result = await dialer.dial(dial_request("+15550005555", base, "call-11"))
    async with asyncio.timeout(10):
        await fake.wait_ended()

    # Eight deliveries (four callbacks, each twice, ringing after the answer).
    assert len(fake.callback_statuses) == 8
    assert sink.statuses(result.provider_call_id) == [
        S.INITIATED,
        S.ANSWERED,
        S.COMPLETED,
    ]
