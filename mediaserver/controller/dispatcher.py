"""The dispatcher: claims due attempts and starts their dials, within limits.

Each campaign gets at most `max_concurrent_calls` calls holding a slot
(counted in the store, so across nodes) and at most `calls_per_second` new
dials (a token bucket per campaign). Pacing is smooth: the bucket holds at
most `BURST_S` worth of calls and never less than one, so up to 100 calls a
second are spaced 1/rate apart (20 cps: one every 50 ms), and faster rates
start at most 10 ms worth of calls together. A claimed attempt outside its calling
window goes back to the queue for the next opening. The dial intent of a
batch is committed before any of its dials start (docs/call-status.md).

`dispatch_once` is one pass and returns how long to wait before the next;
`run` loops over it until stopped, waking early when a call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from mediaserver.clock import Clock
from mediaserver.controller.campaign import Campaign
from mediaserver.controller.window import (
    Window,
    applied_zone_names,
    next_opening_all,
    zones_by_name,
)
from mediaserver.logs import RateLimitedLog
from mediaserver.store.queue import Attempt, QueueStore

log = logging.getLogger(__name__)

DialStarter = Callable[[Attempt, Campaign], Awaitable[None]]


class CampaignSource(Protocol):
    async def get(
        self, campaign_id: str, version: int | None = None
    ) -> Campaign | None:
        """The campaign at `version` (the latest when None), or None."""
        ...


BURST_S = 0.01  # the most calls started together: this many seconds' worth
# Clock readings are whole microseconds: credit within one of a token counts.
_SLACK_S = 1e-6


class TokenBucket:
    """Allows `rate` events a second with bursts of up to `burst`.

    The default burst is `BURST_S` worth of events, at least one: a bucket
    holding a whole second would let a campaign at 20 cps start 20 calls in
    the same millisecond. A pass that wakes late does not catch up.
    """

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        self.rate = max(rate, 1e-9)
        self.burst = burst if burst is not None else max(1.0, rate * BURST_S)
        self._tokens = self.burst
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def available(self, now: float) -> int:
        self._refill(now)
        return int(self._tokens + 2 * _SLACK_S * self.rate)

    def take(self, count: int, now: float) -> None:
        self._refill(now)
        self._tokens -= count

    def give_back(self, count: int) -> None:
        self._tokens = min(self.burst, self._tokens + count)

    def wait_s(self, now: float) -> float:
        """Seconds until one whole token is there."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate - _SLACK_S)


class Dispatcher:
    def __init__(
        self,
        store: QueueStore,
        campaigns: CampaignSource,
        start_dial: DialStarter,
        *,
        owner: str,
        clock: Clock,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        self._store = store
        self._campaigns = campaigns
        self._start_dial = start_dial
        self._owner = owner
        self._clock = clock
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._batch = batch
        self._buckets: dict[str, TokenBucket] = {}
        self._dials: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._warn = RateLimitedLog(log)
        self._t0 = clock()  # buckets count seconds from here (small floats)
        self.dialled = 0  # dials started by this dispatcher

    # -- one pass ----------------------------------------------------------

    async def dispatch_once(self) -> float:
        """Claim and start what the limits allow now; seconds until next pass."""
        waits = [self._poll_s]
        due = await self._store.due_campaigns()
        if not due:
            return await self._idle_wait()
        active = await self._store.active_counts()

        for campaign_id in due:
            campaign = await self._campaigns.get(campaign_id)
            if campaign is None:
                self._warn.warning(
                    campaign_id,
                    "queued calls of unknown campaign %s",
                    campaign_id,
                    campaign_id=campaign_id,
                )
                continue
            wait = await self._dispatch_campaign(campaign, active.get(campaign_id, 0))
            if wait is not None:
                waits.append(wait)
        return min(waits)

    async def _dispatch_campaign(self, campaign: Campaign, active: int) -> float | None:
        now = self._clock()
        bucket = self._bucket(campaign, now)
        free = campaign.max_concurrent_calls - active
        at = self._seconds(now)
        allowed = min(free, bucket.available(at), self._batch)
        if allowed <= 0:
            # A full campaign waits for a call to end (which wakes us).
            return bucket.wait_s(at) if free > 0 else None

        claimed = await self._store.claim(
            campaign.id, owner=self._owner, limit=allowed, lease_s=self._lease_s
        )
        bucket.take(len(claimed), at)
        ready = await self._defer_closed(campaign, claimed, now, bucket)
        ours = await self._store.mark_dial_intent([a.id for a in ready], self._owner)
        for attempt in ready:
            if attempt.id in ours:
                self._spawn(attempt)
        return 0.0 if len(claimed) == allowed and free > allowed else None

    async def _defer_closed(
        self,
        campaign: Campaign,
        claimed: list[Attempt],
        now: dt.datetime,
        bucket: TokenBucket,
    ) -> list[Attempt]:
        """Send attempts outside their calling window back for its opening."""
        window = Window.from_spec(campaign.calling_window)
        ready: list[Attempt] = []
        for attempt in claimed:
            opening = window_opening(window, attempt, now)
            if opening <= now:
                ready.append(attempt)
                continue
            bucket.give_back(1)
            await self._store.release(
                attempt.id,
                opening,
                f"outside calling window until {opening:%Y-%m-%dT%H:%M}Z",
            )
        return ready

    def _bucket(self, campaign: Campaign, now: dt.datetime) -> TokenBucket:
        bucket = self._buckets.get(campaign.id)
        if bucket is None or bucket.rate != campaign.calls_per_second:
            bucket = TokenBucket(campaign.calls_per_second, self._seconds(now))
            self._buckets[campaign.id] = bucket
        return bucket

    def _seconds(self, now: dt.datetime) -> float:
        return (now - self._t0).total_seconds()

    async def _idle_wait(self) -> float:
        upcoming = await self._store.next_due_at()
        if upcoming is None:
            return self._poll_s
        return max(0.0, min(self._poll_s, (upcoming - self._clock()).total_seconds()))

    # -- dial tasks --------------------------------------------------------

    def _spawn(self, attempt: Attempt) -> None:
        task = asyncio.create_task(self._dial(attempt), name=f"dial-{attempt.id}")
        self._dials.add(task)
        task.add_done_callback(self._dials.discard)
        self.dialled += 1

    async def _dial(self, attempt: Attempt) -> None:
        try:
            campaign = await self._campaigns.get(
                attempt.campaign_id, attempt.campaign_version
            )
            if campaign is None:
                raise LookupError(f"campaign version {attempt.campaign_version} gone")
            await self._start_dial(attempt, campaign)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "dial of attempt %s failed", attempt.id, extra={"call_id": attempt.id}
            )

    @property
    def dials_in_progress(self) -> int:
        return len(self._dials)

    async def drain(self) -> None:
        """Wait for the dial requests already started."""
        while self._dials:
            await asyncio.gather(*list(self._dials), return_exceptions=True)

    # -- the loop ----------------------------------------------------------

    def wake(self) -> None:
        """A slot was freed or work was queued: run a pass now."""
        self._wake.set()

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="dispatcher")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch pass failed; retrying")
                wait = self._poll_s
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop claiming; let started dials finish for up to `grace_s`."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._dials:
            _done, pending = await asyncio.wait(list(self._dials), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def window_opening(window: Window, attempt: Attempt, now: dt.datetime) -> dt.datetime:
    """When `attempt` may be dialled: `now` if its window is open."""
    names = applied_zone_names(attempt.recipient_number, attempt.timezone)
    return next_opening_all(window, now, zones_by_name(names))
