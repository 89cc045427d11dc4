"""Telnyx webhooks: signed by the fake, verified and mapped by us."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mediaserver.api.callbacks_telnyx import (
    WEBHOOK_PATH,
    TelnyxEventMapper,
    TelnyxWebhooks,
    map_hangup,
    telnyx_webhook_handler,
)
from mediaserver.carriers.telnyx import (
    TelnyxCredentials,
    TelnyxDialer,
    encode_client_state,
)
from mediaserver.controller.dialer import CarrierStatus, DialRequest
from mediaserver.errors import ProtocolError
from mediaserver.testing.fake_telnyx import FakeTelnyx, sign_webhook
from mediaserver.testing.fake_twilio import CallScript
from tests.carriers.helpers import AppServer, RecordingSink, callback_dial

API_KEY = "KEYabc"
S = CarrierStatus
NOW = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("cause", "answered", "expected"),
    [
        ("user_busy", False, S.BUSY),
        ("call_rejected", False, S.DECLINED),
        ("timeout", False, S.NO_ANSWER),
        ("no_answer", False, S.NO_ANSWER),
        ("originator_cancel", False, S.CANCELED),
        ("normal_clearing", True, S.COMPLETED),
        ("time_limit", True, S.COMPLETED),
        ("normal_clearing", False, S.FAILED),
        ("not_found", False, S.FAILED),
        ("unspecified", False, S.FAILED),
    ],
)
def test_hangup_mapping(cause: str, answered: bool, expected: CarrierStatus) -> None:
    assert map_hangup(cause, answered) is expected


def envelope(event_type: str, event_id: str, **payload: object) -> dict[str, object]:
    body = {"call_control_id": "v3:1", "client_state": encode_client_state("c-1")}
    return {
        "data": {
            "event_type": event_type,
            "id": event_id,
            "occurred_at": "2026-12-04T01:00:00.5Z",
            "payload": {**body, **payload},
        }
    }


def test_mapper_tracks_answer_dedupes_and_reads_client_state() -> None:
    mapper = TelnyxEventMapper()
    initiated = mapper.map(envelope("call.initiated", "e1"), NOW)
    assert initiated is not None
    assert initiated.status is S.INITIATED
    assert initiated.call_id == "c-1"
    assert initiated.at == dt.datetime(2026, 12, 4, 1, 0, 0, 500000, tzinfo=dt.UTC)

    assert mapper.map(envelope("call.initiated", "e1"), NOW) is None
    assert mapper.map(envelope("streaming.started", "e2"), NOW) is None
    answered = mapper.map(envelope("call.answered", "e3"), NOW)
    assert answered is not None
    assert answered.status is S.ANSWERED
    hangup = mapper.map(
        envelope("call.hangup", "e4", hangup_cause="normal_clearing"), NOW
    )
    assert hangup is not None
    assert hangup.status is S.COMPLETED
    assert hangup.detail == "normal_clearing"


def test_mapper_refuses_envelopes_without_a_call() -> None:
    mapper = TelnyxEventMapper()
    for bad in [{}, {"data": {}}, {"data": {"event_type": "x", "payload": {}}}, []]:
        with pytest.raises(ProtocolError):
            mapper.map(bad, NOW)


@pytest_asyncio.fixture
async def setup(
    app_server: AppServer, sink: RecordingSink
) -> AsyncIterator[tuple[FakeTelnyx, TelnyxDialer, str, TelnyxWebhooks]]:
    fake = FakeTelnyx(API_KEY, default=CallScript(ring_s=0.01, hold_s=0.01))
    webhooks = TelnyxWebhooks(fake.public_key, sink)
    base = await app_server.serve([telnyx_webhook_handler(webhooks)])
    await fake.start()
    creds = TelnyxCredentials(api_key=API_KEY, connection_id="conn")
    dialer = TelnyxDialer(creds, api_base=fake.api_base)
    yield fake, dialer, base, webhooks
    await dialer.close()
    await fake.close()


def dial_request(to: str, base: str, call_id: str) -> DialRequest:
    return callback_dial("telnyx", to, base + WEBHOOK_PATH, call_id)


@pytest.mark.parametrize(
    ("outcome", "expected", "cause"),
    [
        ("answer", [S.INITIATED, S.ANSWERED, S.COMPLETED], "normal_clearing"),
        ("busy", [S.INITIATED, S.BUSY], "user_busy"),
        ("decline", [S.INITIATED, S.DECLINED], "call_rejected"),
        ("no_answer", [S.INITIATED, S.NO_ANSWER], "timeout"),
        ("fail", [S.INITIATED, S.FAILED], "unspecified"),
    ],
)
async def test_signed_webhooks_reach_the_sink(
    setup: tuple[FakeTelnyx, TelnyxDialer, str, TelnyxWebhooks],
    sink: RecordingSink,
    outcome: str,
    expected: list[CarrierStatus],
    cause: str,
) -> None:
    fake, dialer, base, _ = setup
    fake.scripts["+15550003333"] = CallScript(outcome=outcome, ring_s=0.01, hold_s=0.01)
    result = await dialer.dial(dial_request("+15550003333", base, "call-5"))
    async with asyncio.timeout(10):
        await fake.wait_ended()

    assert sink.statuses(result.provider_call_id) == expected
    assert all(e.call_id == "call-5" for e in sink.events)
    assert sink.events[-1].detail.startswith(cause)
    assert set(fake.webhook_statuses) == {204}


async def test_forged_stale_and_redelivered_webhooks(
    setup: tuple[FakeTelnyx, TelnyxDialer, str, TelnyxWebhooks],
    sink: RecordingSink,
) -> None:
    fake, _, _, webhooks = setup
    body = json.dumps(envelope("call.answered", "e-9")).encode()
    now = int(time.time())

    def hdrs(stamp: int, sig: str) -> dict[str, str]:
        return {"telnyx-signature-ed25519": sig, "telnyx-timestamp": str(stamp)}

    good = sign_webhook(fake.signing_key, now, body)
    stale = sign_webhook(fake.signing_key, now - 400, body)
    assert await webhooks.handle(body, {}) == 403
    assert await webhooks.handle(body + b" ", hdrs(now, good)) == 403
    assert await webhooks.handle(body, hdrs(now - 400, stale)) == 403
    assert sink.events == []

    assert await webhooks.handle(body, hdrs(now, good)) == 204
    assert await webhooks.handle(body, hdrs(now, good)) == 204
    assert [e.status for e in sink.events] == [S.ANSWERED]

    junk = b"not json"
    assert (
        await webhooks.handle(
            junk, hdrs(now, sign_webhook(fake.signing_key, now, junk))
        )
        == 400
    )


async def test_redelivered_webhooks_reach_the_sink_once(
    setup: tuple[FakeTelnyx, TelnyxDialer, str, TelnyxWebhooks],
    sink: RecordingSink,
) -> None:
    fake, dialer, base, _ = setup
    fake.scripts["+15550006666"] = CallScript(
        outcome="busy", ring_s=0.01, redeliver=True
    )
    result = await dialer.dial(dial_request("+15550006666", base, "call-6"))
    async with asyncio.timeout(10):
        await fake.wait_ended()

    assert fake.webhook_statuses == [204] * 4
    assert sink.statuses(result.provider_call_id) == [S.INITIATED, S.BUSY]
