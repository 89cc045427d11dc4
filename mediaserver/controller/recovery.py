"""Settling attempts nobody will report on: after a crash, or a lost callback.

`Reconciler` holds the rules of docs/call-status.md ("What a crash can and
cannot do"): an undialled claim goes back to the queue, a claim whose dial
intent was committed is failed and never dialled again, and a dialled call
is asked about through `DialerLookup`. Carrier answers are applied through
the Controller's own path, so the status machine and retries hold.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping

import msgspec

from mediaserver.controller.dialer import (
    TERMINAL_STATUSES,
    CarrierEvent,
    CarrierStatus,
    Dialer,
    DialerLookup,
)
from mediaserver.controller.dispatcher import CampaignSource
from mediaserver.controller.status import CallStatus, from_carrier
from mediaserver.store.queue import Attempt, QueueStore

log = logging.getLogger(__name__)

ApplyEvent = Callable[[Attempt, CallStatus, CarrierEvent], Awaitable[None]]
_OVERDUE_MARGIN_S = 120


class Reconciler:
    """One node's reconciliation; `apply` is the Controller's carrier-news path."""

    def __init__(
        self,
        store: QueueStore,
        campaigns: CampaignSource,
        dialers: Mapping[str, Dialer],
        apply: ApplyEvent,
        *,
        node_id: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self._campaigns = campaigns
        self._dialers = dialers
        self._apply = apply
        self.node_id = node_id
        self._clock = clock

    async def recover(self) -> None:
        """Settle attempts a crash caught mid-dispatch or mid-call."""
        for attempt in await self.store.stale_dispatching(self.node_id):
            await self._recover_dispatching(attempt)
        for attempt in await self.store.in_flight(self.node_id):
            await self._recover_in_flight(attempt)

    async def sweep_expired(self) -> None:
        """Claims of any node whose dispatch lease ran out (the node died)."""
        for attempt in await self.store.stale_dispatching(None):
            await self._recover_dispatching(attempt)

    async def _recover_dispatching(self, attempt: Attempt) -> None:
        if attempt.dial_intent_at is None:
            await self.store.release(
                attempt.id, attempt.scheduled_for, "recovered: never dialled"
            )
            return

        # The dial may or may not have reached the carrier: never dial again.
        error = "dispatch interrupted after the dial was sent; outcome unknown"
        async with self.store.transaction() as conn:
            await self.store.transition(
                conn,
                attempt.id,
                CallStatus.FAILED,
                values={"initiation_error": error, "outcome": "failed"},
                detail="recovered: " + error,
                strict=False,
            )
        log.warning("attempt %s: %s", attempt.id, error, extra={"call_id": attempt.id})

    async def settle_overdue(self) -> int:
        """End our calls still in flight long past their longest possible length.

        A call whose ending callback was lost would hold its slot for ever:
        past ring timeout + max call length (+ a margin) the carrier is asked
        (`lookup`); a call it still reports running is hung up and failed,
        and without `lookup` the call is failed. Returns how many were settled.
        """
        now = self._clock()
        settled = 0
        for attempt in await self.store.in_flight(self.node_id):
            campaign = await self._campaigns.get(
                attempt.campaign_id, attempt.campaign_version
            )
            longest = (
                campaign.ring_timeout_s + campaign.max_call_s if campaign else 3600
            )
            started = attempt.processing_started_at or attempt.enqueued_at
            if (now - started).total_seconds() < longest + _OVERDUE_MARGIN_S:
                continue
            await self._recover_in_flight(attempt, overdue=True)
            settled += 1
        return settled

    async def _recover_in_flight(
        self, attempt: Attempt, *, overdue: bool = False
    ) -> None:
        dialer = self._dialers.get(attempt.calling_number_provider)
        if not attempt.provider_call_id:
            return
        if not isinstance(dialer, DialerLookup):
            if overdue:
                await self._fail_overdue(attempt, "no ending reported by the carrier")
            return  # else the carrier's callbacks will settle it
        event = await dialer.lookup(attempt.provider_call_id)
        if overdue and event is not None and event.status not in TERMINAL_STATUSES:
            await dialer.hangup(attempt.provider_call_id)
            await self._fail_overdue(attempt, "still running past its longest length")
            return
        if event is None:
            event = CarrierEvent(
                provider=attempt.calling_number_provider,
                provider_call_id=attempt.provider_call_id,
                status=CarrierStatus.FAILED,
                at=self._clock(),
                call_id=attempt.id,
                detail="the carrier does not know this call",
            )
        event = msgspec.structs.replace(event, detail=f"recovered: {event.detail}")
        await self._apply(attempt, from_carrier(event.status), event)

    async def _fail_overdue(self, attempt: Attempt, why: str) -> None:
        assert attempt.provider_call_id is not None
        log.warning(
            "call %s overdue: %s", attempt.id, why, extra={"call_id": attempt.id}
        )
        event = CarrierEvent(
            provider=attempt.calling_number_provider,
            provider_call_id=attempt.provider_call_id,
            status=CarrierStatus.FAILED,
            at=self._clock(),
            call_id=attempt.id,
            detail=f"overdue: {why}",
        )
        await self._apply(attempt, CallStatus.FAILED, event)
