"""The webhook delivery worker, and the signature receivers verify.

The worker claims due rows of the outbox (`webhook_deliveries`) with a
lease, sends each with its tool's timeout over one `httpx.AsyncClient`,
at most `concurrency` at a time, and records the result: delivered, due
again after an exponential backoff with full jitter, or failed once the
attempts run out or the receiver refuses for good (a 4xx other than 408
and 429). It is its own task: a slow or dead receiver holds up only its
own deliveries, never the media path or the dispatcher. A crash mid-send
leaves the lease to expire, and the row is sent again with the same id.

Signature (docs/webhooks.md): `Callwright-Signature: v1=<hex>` where hex
is HMAC-SHA256(secret, "<webhook id>.<unix timestamp>." + body).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.clock import Clock, utc_now
from mediaserver.errors import DeliveryError
from mediaserver.logs import RateLimitedLog
from mediaserver.store.outbox_tables import claim_due, webhook_deliveries

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)


HEADER_ID = "Callwright-Webhook-Id"
HEADER_EVENT_ID = "Callwright-Event-Id"
HEADER_EVENT = "Callwright-Event"
HEADER_SEQUENCE = "Callwright-Sequence"
HEADER_TIMESTAMP = "Callwright-Timestamp"
HEADER_SIGNATURE = "Callwright-Signature"


def sign(secret: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `Callwright-Signature` value for one delivery attempt."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True when `headers` sign `body` with `secret`, recently enough.

    Header names are matched without regard to case.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get(HEADER_ID.lower())
    stamp = lowered.get(HEADER_TIMESTAMP.lower(), "")
    given = lowered.get(HEADER_SIGNATURE.lower(), "")
    if not webhook_id or not stamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(stamp)) > tolerance_s:
        return False
    expected = sign(secret, webhook_id, int(stamp), body)
    # A header may carry several signatures (key rotation), space separated.
    return any(hmac.compare_digest(expected, sig) for sig in given.split())


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (RFC 9110 10.2.3); the HTTP-date form is ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class BackoffPolicy(msgspec.Struct, frozen=True, kw_only=True):
    base_s: float = 2.0
    cap_s: float = 600.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))]."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(attempts - 1, 0))
        return rng.uniform(0.0, ceiling)


DEFAULT_BACKOFF = BackoffPolicy()


class DeliveryWorker:
    """Sends due outbox rows; `run()` until cancelled, or `drain()` in tests."""

    def __init__(
        self,
        engine: AsyncEngine,
        secret: bytes,
        *,
        concurrency: int = 8,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        poll_s: float = 0.5,
        lease_s: float = 150.0,
        clock: Clock = utc_now,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self._concurrency = concurrency
        self._backoff = backoff
        self._poll_s = poll_s
        self._lease = dt.timedelta(seconds=lease_s)
        self._clock = clock
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._owns_client = client is None
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._busy = 0  # sends in flight
        self._half = max(1, concurrency // 2)
        self._freed = asyncio.Event()

    def notify(self) -> None:
        """Look for due rows now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Poll and deliver until cancelled.

        Only as many rows are claimed as there are free slots, so a claimed
        row is sent at once and its lease (longer than any tool timeout)
        cannot run out while it waits behind slow receivers.
        """
        async with asyncio.TaskGroup() as group:
            while True:
                free = self._concurrency - self._busy
                # Claim in batches: wait for half the slots unless all are idle.
                if free <= 0 or (self._busy and free < self._half):
                    self._freed.clear()
                    await self._freed.wait()
                    continue
                claimed = await self._claim_or_wait(free)
                for row in claimed:
                    self._busy += 1
                    group.create_task(self._send_slot(row), name=f"webhook:{row['id']}")
                if not claimed:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def drain(self) -> int:
        """Deliver every row due now, once each; returns how many were tried."""
        tried = 0
        while rows := await self._claim(self._concurrency):
            await asyncio.gather(*(self._send(row) for row in rows))
            tried += len(rows)
        return tried

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _claim_or_wait(self, limit: int) -> list[dict[str, Any]]:
        try:
            return await self._claim(limit)
        except Exception:  # the store may come back; the worker stays up
            log.exception("claiming webhook deliveries failed")
            await asyncio.sleep(self._poll_s)
            return []

    async def _send_slot(self, row: Mapping[str, Any]) -> None:
        try:
            await self._send(row)
        except Exception:  # recording the result failed: the lease expires
            log.exception("recording webhook delivery %s failed", row["id"])
        finally:
            self._busy -= 1
            self._freed.set()

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        return await claim_due(
            self._engine,
            webhook_deliveries,
            now=self._clock(),
            lease=self._lease,
            limit=limit,
        )

    async def _send(self, row: Mapping[str, Any]) -> None:
        attempts = int(row["attempts"]) + 1
        try:
            status_code, retry_after = await self._post(row)
        except DeliveryError as exc:
            await self._failed_attempt(row, attempts, exc, None)
            return
        except Exception as exc:  # a bug must not stop the worker
            log.exception("webhook delivery %s crashed", row["id"])
            await self._failed_attempt(
                row, attempts, DeliveryError(repr(exc), retryable=True), None
            )
            return

        if 200 <= status_code < 300:
            await self._update(
                row["id"],
                status="delivered",
                attempts=attempts,
                delivered_at=self._clock(),
                last_status_code=status_code,
                last_error=None,
                lease_until=None,
            )
            log.info(
                "webhook %s (%s #%d) delivered on attempt %d",
                row["id"],
                row["event"],
                row["sequence"],
                attempts,
                extra={"call_id": row["call_id"], "campaign_id": row["campaign_id"]},
            )
            return
        retryable = status_code >= 500 or status_code in (408, 429)
        error = DeliveryError(f"receiver answered {status_code}", retryable=retryable)
        await self._failed_attempt(row, attempts, error, status_code, retry_after)

    async def _post(self, row: Mapping[str, Any]) -> tuple[int, float | None]:
        """Send one attempt; the status code and any Retry-After, in seconds."""
        body = str(row["body"]).encode()
        stamp = int(self._clock().timestamp())
        headers = {
            **dict(row["headers"] or {}),
            "Content-Type": "application/json",
            "User-Agent": "callwright-webhooks/1",
            HEADER_ID: str(row["id"]),
            HEADER_EVENT_ID: str(row["event_id"]),
            HEADER_EVENT: str(row["event"]),
            HEADER_SEQUENCE: str(row["sequence"]),
            HEADER_TIMESTAMP: str(stamp),
            HEADER_SIGNATURE: sign(self._secret, str(row["id"]), stamp, body),
        }
        try:
            response = await self._client.request(
                str(row["method"]),
                str(row["url"]),
                content=body,
                headers=headers,
                timeout=float(row["timeout_s"]),
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError("receiver timed out", retryable=True) from exc
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            raise DeliveryError(
                f"receiver unreachable ({reason})", retryable=True
            ) from exc
        return response.status_code, _retry_after(response.headers.get("retry-after"))

    async def _failed_attempt(
        self,
        row: Mapping[str, Any],
        attempts: int,
        error: DeliveryError,
        status_code: int | None,
        retry_after: float | None = None,
    ) -> None:
        gives_up = not error.retryable or attempts >= int(row["max_attempts"])
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": str(error),
            "last_status_code": status_code,
            "lease_until": None,
        }
        if gives_up:
            values["status"] = "failed"
            log.warning(
                "webhook %s to %s failed for good after %d attempts: %s",
                row["id"],
                row["tool_name"],
                attempts,
                error,
                extra={"call_id": row["call_id"], "campaign_id": row["campaign_id"]},
            )
        else:
            delay = self._backoff.delay(attempts, self._rng)
            if retry_after is not None:  # the receiver said when; within our cap
                delay = max(delay, min(retry_after, self._backoff.cap_s))
            values["next_attempt_at"] = self._clock() + dt.timedelta(seconds=delay)
            _warn.warning(
                f"webhook:{row['tool_name']}",
                "webhook %s to %s: %s; attempt %d of %d, next in %.1f s",
                row["id"],
                row["tool_name"],
                error,
                attempts,
                row["max_attempts"],
                delay,
            )
        await self._update(row["id"], **values)

    async def _update(self, row_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == row_id)
                .values(**values)
            )
