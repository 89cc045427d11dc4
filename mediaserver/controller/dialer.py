"""The seam between the dispatcher and a carrier.

A `Dialer` places and ends calls; the carrier's progress comes back as
`CarrierEvent`s handed to a `CarrierEventSink` (the controller), whatever
the transport: a status callback (Twilio, Telnyx) or the simulated carrier.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Protocol, runtime_checkable

import msgspec


class CarrierStatus(StrEnum):
    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"  # an answered call ended
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATUSES = frozenset(
    {
        CarrierStatus.COMPLETED,
        CarrierStatus.BUSY,
        CarrierStatus.NO_ANSWER,
        CarrierStatus.DECLINED,
        CarrierStatus.FAILED,
        CarrierStatus.CANCELED,
    }
)


class DialRequest(msgspec.Struct, frozen=True, kw_only=True):
    call_id: str
    from_number: str  # E.164
    to_number: str  # E.164
    media_url: str  # ws(s):// URL of our media endpoint for this carrier
    media_token: str  # per-call signed token, passed as a stream parameter
    status_callback_url: str = ""  # where the carrier reports progress
    ring_timeout_s: int = 30
    max_call_s: int = 600


class DialResult(msgspec.Struct, frozen=True, kw_only=True):
    provider_call_id: str


class CarrierEvent(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    provider_call_id: str
    status: CarrierStatus
    at: dt.datetime
    call_id: str | None = None  # when the carrier echoes it back
    sequence: int | None = None  # carrier's ordering, where it gives one
    detail: str = ""  # e.g. hangup cause or SIP code


class Dialer(Protocol):
    name: str  # "simulated", "twilio", "telnyx"

    async def dial(self, request: DialRequest) -> DialResult:
        """Place the call. Raises `CarrierError` with `retryable` set."""
        ...

    async def hangup(self, provider_call_id: str) -> None:
        """End the call; a call that has already ended is not an error."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DialerLookup(Protocol):
    """Optional for a `Dialer`: ask the carrier where a call stands.

    The controller uses it after a restart to learn what happened to calls
    it dialled while it was down; a dialer without it leaves them to the
    carrier's callbacks.
    """

    async def lookup(self, provider_call_id: str) -> CarrierEvent | None:
        """The call's latest status, or None if the carrier does not know it."""
        ...


class CarrierEventSink(Protocol):
    async def carrier_event(self, event: CarrierEvent) -> None: ...
