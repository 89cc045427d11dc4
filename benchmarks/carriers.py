"""Cost of the carrier edge: callback verification and dials through the SDKs.

Callbacks: how long our Sans-I/O core takes to verify and map one signed
Twilio status callback (HMAC-SHA1) and one signed Telnyx webhook (Ed25519).
Dials: the round trip of `dial` through the official SDK to the loopback
fake (the SDK's own overhead plus one loopback HTTP request), sequential
and with several dials in flight.

    .venv/bin/python -m benchmarks.carriers [--callbacks 5000] [--dials 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from urllib.parse import urlencode

from mediaserver.api.callbacks_telnyx import TelnyxWebhooks
from mediaserver.api.callbacks_twilio import STATUS_PATH, TwilioStatusCallbacks
from mediaserver.carriers.telnyx import TelnyxCredentials, TelnyxDialer
from mediaserver.carriers.twilio import TwilioCredentials, TwilioDialer
from mediaserver.controller.dialer import CarrierEvent, Dialer, DialRequest
from mediaserver.testing.fake_telnyx import FakeTelnyx, sign_webhook
from mediaserver.testing.fake_twilio import CallScript, FakeTwilio, twilio_signature

SID = "AC" + "5" * 32
TOKEN = "bench-token"
PUBLIC = "https://callbacks.example.test"


class _Sink:
    async def carrier_event(self, event: CarrierEvent) -> None:
        return None


def bench_twilio_callbacks(count: int) -> float:
    callbacks = TwilioStatusCallbacks(TOKEN, PUBLIC, _Sink())
    path = STATUS_PATH + "?call_id=c1"
    params = {
        "AccountSid": SID,
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "completed",
        "From": "+12125550100",
        "To": "+12125550123",
        "SequenceNumber": "3",
        "SipResponseCode": "200",
        "Timestamp": "Fri, 04 Dec 2026 01:00:00 +0000",
    }
    body = urlencode(params).encode()
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, PUBLIC + path, params)}
    start = time.perf_counter()
    for _ in range(count):
        callbacks.parse(path, callbacks.verify(path, body, headers))
    return (time.perf_counter() - start) / count * 1e6


def bench_telnyx_webhooks(count: int) -> float:
    fake = FakeTelnyx("k")
    webhooks = TelnyxWebhooks(fake.public_key, _Sink())
    bodies = []
    for i in range(count):
        envelope = {
            "data": {
                "event_type": "call.hangup",
                "id": f"e{i}",  # distinct ids: redeliveries are dropped early
                "occurred_at": "2026-12-04T01:00:00Z",
                "payload": {
                    "call_control_id": "v3:x",
                    "hangup_cause": "user_busy",
                    "client_state": base64.b64encode(b"c1").decode(),
                },
            }
        }
        raw = json.dumps(envelope).encode()
        stamp = int(time.time())
        bodies.append(
            (
                raw,
                {
                    "telnyx-signature-ed25519": sign_webhook(
                        fake.signing_key, stamp, raw
                    ),
                    "telnyx-timestamp": str(stamp),
                },
            )
        )
    start = time.perf_counter()
    for raw, headers in bodies:
        webhooks.parse(raw, headers)
    return (time.perf_counter() - start) / count * 1e6


def _request(i: int) -> DialRequest:
    return DialRequest(
        call_id=f"call-{i}",
        from_number="+12125550100",
        to_number="+12125550123",
        media_url="wss://media.example.test/media",
        media_token="t.1.m",
    )


async def _time_dials(dialer: Dialer, count: int, concurrency: int) -> list[float]:
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            start = time.perf_counter()
            await dialer.dial(_request(i))
            times.append((time.perf_counter() - start) * 1000)

    async with asyncio.TaskGroup() as group:
        for i in range(count):
            group.create_task(one(i))
    return times


async def bench_dials(count: int) -> None:
    # Calls that ring forever: the fakes only answer REST requests here.
    script = CallScript(ring_s=3600)
    twilio_fake = FakeTwilio(SID, TOKEN, default=script)
    telnyx_fake = FakeTelnyx("key", default=script)
    await twilio_fake.start()
    await telnyx_fake.start()
    dialers: list[tuple[str, Dialer]] = [
        (
            "twilio",
            TwilioDialer(TwilioCredentials(SID, TOKEN), api_base=twilio_fake.api_base),
        ),
        (
            "telnyx",
            TelnyxDialer(
                TelnyxCredentials(api_key="key", connection_id="c"),
                api_base=telnyx_fake.api_base,
            ),
        ),
    ]
    try:
        for name, dialer in dialers:
            await _time_dials(dialer, 5, 1)  # warm up
            for concurrency in (1, 8):
                start = time.perf_counter()
                times = await _time_dials(dialer, count, concurrency)
                rate = count / (time.perf_counter() - start)
                q = statistics.quantiles(times, n=100)
                print(
                    f"{name} dial, {concurrency} in flight: p50 {q[49]:.1f} ms, "
                    f"p95 {q[94]:.1f} ms, {rate:.0f} dials/s"
                )
    finally:
        for _, dialer in dialers:
            await dialer.close()
        await twilio_fake.close()
        await telnyx_fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=5000)
    parser.add_argument("--dials", type=int, default=200)
    args = parser.parse_args()
    print(
        f"twilio callback verify+map: {bench_twilio_callbacks(args.callbacks):.0f} us"
    )
    print(f"telnyx webhook verify+map: {bench_telnyx_webhooks(args.callbacks):.0f} us")
    asyncio.run(bench_dials(args.dials))


if __name__ == "__main__":
    main()
