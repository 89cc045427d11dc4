"""The Controller: the control plane's one object.

It owns the queue store and the dispatcher, keeps a registry of dialers by
provider name, and is, for the rest of the system:

- the `PlanSource` the media server asks for a call's plan,
- the `CallObserver` the media server reports answers and endings to,
- the `CarrierEventSink` status callbacks (and the simulated carrier) feed.

Carrier news is applied through the status machine; late, duplicate and
out-of-order callbacks are refused by it and change nothing. An ending
that a retry trigger covers creates the next attempt in the same
transaction. `start` first reconciles attempts a crash left behind
(controller/recovery.py), then keeps sweeping for dead nodes' claims and
calls whose ending never came.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from mediaserver import tokens
from mediaserver.amd.events import Verdict
from mediaserver.clock import Clock
from mediaserver.controller.campaign import Campaign
from mediaserver.controller.dialer import (
    CarrierEvent,
    Dialer,
    DialRequest,
)
from mediaserver.controller.dispatcher import CampaignSource, Dispatcher
from mediaserver.controller.group_commit import InitiatedWriter
from mediaserver.controller.launch import LaunchRequest
from mediaserver.controller.recovery import Reconciler
from mediaserver.controller.retries import plan_retry
from mediaserver.controller.routing import route_caller_id
from mediaserver.controller.status import TERMINAL, CallStatus, from_carrier
from mediaserver.errors import CarrierError
from mediaserver.ids import new_id
from mediaserver.logs import RateLimitedLog, mask_number, mask_text
from mediaserver.plan import CallOutcome, CallPlan, EndType
from mediaserver.store.queue import Attempt, NewAttempt, QueueStore

log = logging.getLogger(__name__)

# Statuses in which the carrier may open the call's media stream.
_DIALLED = frozenset(
    {
        CallStatus.DISPATCHING,
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.ANSWERED,
    }
)

_ERROR_MAX = 500


class StaticCampaigns:
    """A `CampaignSource` over campaigns held in memory (tests, demos)."""

    def __init__(self, campaigns: Sequence[Campaign] = ()) -> None:
        self._by_key: dict[tuple[str, int], Campaign] = {}
        self._latest: dict[str, Campaign] = {}
        for campaign in campaigns:
            self.add(campaign)

    def add(self, campaign: Campaign) -> None:
        self._by_key[(campaign.id, campaign.version)] = campaign
        latest = self._latest.get(campaign.id)
        if latest is None or campaign.version >= latest.version:
            self._latest[campaign.id] = campaign

    async def get(
        self, campaign_id: str, version: int | None = None
    ) -> Campaign | None:
        if version is None:
            return self._latest.get(campaign_id)
        return self._by_key.get((campaign_id, version))


class Controller:
    def __init__(
        self,
        store: QueueStore,
        campaigns: CampaignSource,
        dialers: Mapping[str, Dialer],
        *,
        media_urls: Mapping[str, str],
        token_secret: bytes,
        node_id: str = "node-1",
        clock: Clock | None = None,
        status_callback_urls: Mapping[str, str] | None = None,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
    ) -> None:
        self._sweep_s = max(1.0, lease_s / 2)
        self._sweep_task: asyncio.Task[None] | None = None
        self.store = store
        self._campaigns = campaigns
        self._dialers = dict(dialers)
        self._media_urls = dict(media_urls)
        self._callbacks = dict(status_callback_urls or {})
        self._secret = token_secret
        self.node_id = node_id
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._warn = RateLimitedLog(log)
        self._initiated = InitiatedWriter(store)
        self._reconciler = Reconciler(
            store,
            campaigns,
            self._dialers,
            self._apply,
            node_id=node_id,
            clock=self._clock,
        )
        self.dispatcher = Dispatcher(
            store,
            campaigns,
            self._dial,
            owner=node_id,
            clock=self._clock,
            lease_s=lease_s,
            poll_s=poll_s,
        )

    def set_media_url(self, provider: str, url: str) -> None:
        """Where `provider`'s media streams go (known once the listener runs)."""
        self._media_urls[provider] = url

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Reconcile what a crash left behind, then start dispatching."""
        await self.recover()
        self.dispatcher.start()
        if self._sweep_task is None:
            self._sweep_task = asyncio.create_task(self._sweep(), name="lease-sweep")

    async def stop(self) -> None:
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            await asyncio.gather(self._sweep_task, return_exceptions=True)
            self._sweep_task = None
        await self.dispatcher.stop()
        await self._initiated.close()

    async def _sweep(self) -> None:
        """Settle what nobody will report on: dead nodes' dispatches, lost calls."""
        while True:
            await asyncio.sleep(self._sweep_s)
            try:
                await self._reconciler.sweep_expired()
                await self.settle_overdue()
            except Exception:
                log.exception("sweep failed; trying again later")

    # -- enqueueing --------------------------------------------------------

    async def enqueue(
        self, launches: Sequence[LaunchRequest], *, contact_ids: Sequence[str] = ()
    ) -> list[Attempt]:
        """Queue the first attempt of each launch (one transaction)."""
        items: list[NewAttempt] = []
        for index, launch in enumerate(launches):
            campaign = await self._campaigns.get(launch.campaign_id)
            if campaign is None:
                raise LookupError(f"unknown campaign {launch.campaign_id}")
            contact = contact_ids[index] if index < len(contact_ids) else new_id()
            items.append(self._first_attempt(campaign, launch, contact))
        attempts = await self.store.enqueue_many(items)
        self.dispatcher.wake()
        return attempts

    def _first_attempt(
        self, campaign: Campaign, launch: LaunchRequest, contact_id: str
    ) -> NewAttempt:
        calling = launch.calling_number or route_caller_id(
            campaign.caller_id, launch.number
        )
        now = self._clock()
        when = max(launch.scheduled_for or now, now)
        return NewAttempt(
            contact_id=contact_id,
            campaign_id=campaign.id,
            campaign_version=launch.campaign_version or campaign.version,
            recipient_number=launch.number,
            calling_number_id=calling.id,
            calling_number=calling.number,
            calling_number_provider=calling.provider or campaign.provider,
            scheduled_for=when,
            dynamic_variables=dict(launch.variables),
            metadata=dict(launch.metadata),
            timezone=launch.timezone,
            source_row=launch.row,
            calling_window=campaign.calling_window,
        )

    # -- dialling (called by the dispatcher, intent already recorded) ------

    async def _dial(self, attempt: Attempt, campaign: Campaign) -> None:
        provider = attempt.calling_number_provider
        dialer = self._dialers.get(provider)
        conversation_id = new_id()
        if dialer is None:
            await self._initiation_failed(attempt, f"no dialer for provider {provider}")
            return
        request = DialRequest(
            call_id=attempt.id,
            from_number=attempt.calling_number,
            to_number=attempt.recipient_number,
            media_url=self._media_urls.get(provider, ""),
            media_token=tokens.issue(self._secret, attempt.id),
            status_callback_url=self._callbacks.get(provider, ""),
            ring_timeout_s=campaign.ring_timeout_s,
            max_call_s=campaign.max_call_s,
        )

        try:
            result = await dialer.dial(request)
        except CarrierError as exc:
            await self._initiation_failed(attempt, f"provider_error: {exc}")
            return
        except Exception as exc:
            log.exception("dialer %s raised unexpectedly", provider)
            await self._initiation_failed(attempt, f"provider_error: {exc!r}")
            return

        log.info(
            "call dialled to %s",
            mask_number(attempt.recipient_number),
            extra={"call_id": attempt.id, "campaign_id": attempt.campaign_id},
        )
        await self._initiated.record(
            attempt.id,
            {
                "provider_call_id": result.provider_call_id,
                "conversation_id": conversation_id,
            },
        )

    async def _initiation_failed(self, attempt: Attempt, error: str) -> None:
        log.warning("dial refused: %s", mask_text(error), extra={"call_id": attempt.id})
        async with self.store.transaction() as conn:
            await self.store.transition(
                conn,
                attempt.id,
                CallStatus.INITIATION_FAILED,
                values={"initiation_error": error[:_ERROR_MAX], "outcome": "failed"},
                detail=error[:_ERROR_MAX],
                strict=False,
            )
        self.dispatcher.wake()

    # -- CarrierEventSink --------------------------------------------------

    async def carrier_event(self, event: CarrierEvent) -> None:
        attempt = await self._attempt_for(event)
        if attempt is None:
            self._warn.warning(
                "unknown-call",
                "carrier %s reported on a call we do not know",
                event.provider,
            )
            return
        await self._apply(attempt, from_carrier(event.status), event)

    async def _attempt_for(self, event: CarrierEvent) -> Attempt | None:
        if event.call_id:
            attempt = await self.store.get(event.call_id)
            if (
                attempt is not None
                and attempt.calling_number_provider == event.provider
            ):
                return attempt
        return await self.store.by_provider_call(event.provider, event.provider_call_id)

    async def _apply(
        self, attempt: Attempt, target: CallStatus, event: CarrierEvent
    ) -> None:
        ended: Attempt | None = None
        async with self.store.transaction() as conn:
            if attempt.status is CallStatus.DISPATCHING:
                # The carrier spoke before our dial request returned.
                await self.store.transition(
                    conn,
                    attempt.id,
                    CallStatus.INITIATED,
                    values={
                        "provider_call_id": event.provider_call_id,
                        "conversation_id": new_id(),
                    },
                    detail="carrier reported before the dial returned",
                    strict=False,
                )
            if target is CallStatus.INITIATED:
                return
            values: dict[str, object] = {}
            if target is CallStatus.ANSWERED:
                values["answered_at"] = event.at
            if target in TERMINAL:
                values["outcome"] = target.value
                values["completed_at"] = event.at
            changed = await self.store.transition(
                conn,
                attempt.id,
                target,
                values=values,
                detail=event.detail,
                strict=False,
            )
            if changed is not None and target in TERMINAL:
                ended = changed
                await self._maybe_retry(conn, changed)
        if ended is not None:
            self.dispatcher.wake()

    async def _maybe_retry(self, conn: AsyncConnection, attempt: Attempt) -> None:
        campaign = await self._campaigns.get(
            attempt.campaign_id, attempt.campaign_version
        )
        if campaign is None:
            return
        retry = plan_retry(
            campaign.retry, attempt.status, attempt.attempt_number, self._clock()
        )
        if retry is None:
            return
        await self.store.enqueue(
            NewAttempt(
                contact_id=attempt.contact_id,
                attempt_number=retry.attempt_number,
                retry_of=attempt.id,
                campaign_id=attempt.campaign_id,
                campaign_version=attempt.campaign_version,
                recipient_number=attempt.recipient_number,
                # Every attempt of a contact keeps the first one's caller number.
                calling_number_id=attempt.calling_number_id,
                calling_number=attempt.calling_number,
                calling_number_provider=attempt.calling_number_provider,
                scheduled_for=retry.scheduled_for,
                dynamic_variables=attempt.dynamic_variables,
                metadata=attempt.metadata,
                timezone=attempt.timezone,
                source_row=attempt.source_row,
                calling_window=campaign.calling_window,
            ),
            conn=conn,
        )
        log.info(
            "retry %d scheduled on %s",
            retry.attempt_number,
            retry.trigger,
            extra={"call_id": attempt.id, "campaign_id": attempt.campaign_id},
        )

    # -- PlanSource --------------------------------------------------------

    async def plan_for(self, call_id: str) -> CallPlan | None:
        attempt = await self.store.get(call_id)
        if attempt is None or attempt.status not in _DIALLED:
            # A token is no licence on its own: only a call we are dialling
            # (or already talking on) may open a media stream.
            return None
        campaign = await self._campaigns.get(
            attempt.campaign_id, attempt.campaign_version
        )
        if campaign is None:
            return None
        return CallPlan(
            call_id=attempt.id,
            campaign_id=attempt.campaign_id,
            conversation_id=attempt.conversation_id or attempt.id,
            agent_url=campaign.agent_url,
            opening_script=campaign.opening_script,
            leave_message_script=campaign.leave_message_script,
            inject_numbers=campaign.inject_numbers,
            from_number=attempt.calling_number,
            to_number=attempt.recipient_number,
            variables=attempt.dynamic_variables,
            metadata=attempt.metadata,
            amd=campaign.amd,
            max_call_s=campaign.max_call_s,
        )

    # -- CallObserver ------------------------------------------------------

    async def call_answered(self, call_id: str, at: dt.datetime) -> None:
        async with self.store.transaction() as conn:
            await self.store.transition(
                conn,
                call_id,
                CallStatus.ANSWERED,
                values={"answered_at": at},
                detail="media started",
                strict=False,
            )

    async def call_verdict(self, call_id: str, verdict: Verdict) -> None:
        async with self.store.transaction() as conn:
            await self.store.set_fields(conn, call_id, verdict=verdict.label.value)

    async def call_ended(self, outcome: CallOutcome) -> None:
        values: dict[str, object] = {
            "end_type": outcome.end_type,
            "completed_at": outcome.ended_at,
            "outcome": CallStatus.COMPLETED.value,
        }
        if outcome.verdict is not None:
            values["verdict"] = outcome.verdict.label.value
        if outcome.error:
            values["initiation_error"] = outcome.error[:_ERROR_MAX]
        async with self.store.transaction() as conn:
            moved = await self.store.transition(
                conn,
                outcome.call_id,
                CallStatus.COMPLETED,
                values=values,
                detail=outcome.end_type,
                strict=False,
            )
            if moved is None:
                # The carrier's "completed" can arrive before the media
                # outcome; the media plane still knows best how it ended.
                await self._complete_fields(conn, outcome.call_id, values)
        self.dispatcher.wake()
        if outcome.end_type != EndType.USER_HANGUP:
            await self._hang_up(outcome.call_id)

    async def _complete_fields(
        self, conn: AsyncConnection, call_id: str, values: dict[str, object]
    ) -> None:
        current = await self.store.get(call_id, conn=conn)
        if current is None or current.status is not CallStatus.COMPLETED:
            return
        fields = {k: v for k, v in values.items() if k != "completed_at"}
        if current.verdict and "verdict" in fields:
            del fields["verdict"]
        await self.store.set_fields(conn, call_id, **fields)

    async def _hang_up(self, call_id: str) -> None:
        """End the carrier leg when our side ended the call.

        Closing a Twilio <Connect> stream ends the call by itself; a Telnyx
        leg stays up (and billed) until hung up through Call Control.
        Dialers treat "already ended" as success, so this is safe twice.
        """
        attempt = await self.store.get(call_id)
        if attempt is None or not attempt.provider_call_id:
            return
        dialer = self._dialers.get(attempt.calling_number_provider)
        if dialer is None:
            return
        try:
            await asyncio.wait_for(dialer.hangup(attempt.provider_call_id), 10)
        except (CarrierError, TimeoutError) as exc:
            self._warn.warning(
                "hangup",
                "hangup of %s failed: %s",
                call_id,
                mask_text(str(exc)),
                call_id=call_id,
            )

    # -- crash recovery (controller/recovery.py) ----------------------------

    async def recover(self) -> None:
        """Settle attempts a crash caught mid-dispatch or mid-call."""
        await self._reconciler.recover()

    async def settle_overdue(self) -> int:
        """End our calls in flight long past their longest possible length."""
        return await self._reconciler.settle_overdue()
