"""The call-attempt status machine (see docs/call-status.md).

Pure bookkeeping, no I/O: the store asks `check_transition` before it
writes a status, so an illegal move is refused in one place.
"""

from __future__ import annotations

from enum import StrEnum

from mediaserver.controller.dialer import CarrierStatus


class CallStatus(StrEnum):
    QUEUED = "queued"  # waiting for its scheduled time and a free slot
    DISPATCHING = "dispatching"  # claimed by a node, dial not yet accepted
    INITIATED = "initiated"  # the carrier accepted the dial
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"  # an answered call ended
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    FAILED = "failed"  # the call failed after the dial was accepted
    INITIATION_FAILED = "initiation_failed"  # the carrier refused the dial
    CANCELED = "canceled"


TERMINAL = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.DECLINED,
        CallStatus.FAILED,
        CallStatus.INITIATION_FAILED,
        CallStatus.CANCELED,
    }
)

# A call holds a slot of its campaign's max_concurrent_calls while here.
ACTIVE = frozenset(
    {
        CallStatus.DISPATCHING,
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.ANSWERED,
    }
)

_CALL_ENDINGS = frozenset(
    {
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.DECLINED,
        CallStatus.FAILED,
        CallStatus.CANCELED,
    }
)

ALLOWED: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset({CallStatus.DISPATCHING, CallStatus.CANCELED}),
    # Back to queued: deferred to the calling window, or reconciled as never
    # dialled. Failed: a crash left the dial's fate unknown.
    CallStatus.DISPATCHING: frozenset(
        {
            CallStatus.INITIATED,
            CallStatus.INITIATION_FAILED,
            CallStatus.QUEUED,
            CallStatus.FAILED,
            CallStatus.CANCELED,
        }
    ),
    CallStatus.INITIATED: frozenset(
        {CallStatus.RINGING, CallStatus.ANSWERED, CallStatus.COMPLETED} | _CALL_ENDINGS
    ),
    CallStatus.RINGING: frozenset(
        {CallStatus.ANSWERED, CallStatus.COMPLETED} | _CALL_ENDINGS
    ),
    CallStatus.ANSWERED: frozenset({CallStatus.COMPLETED, CallStatus.FAILED}),
}


class IllegalTransition(ValueError):
    """A status change the machine does not allow."""


def can_transition(old: CallStatus | None, new: CallStatus) -> bool:
    """Whether `old -> new` is legal; `None` is a new attempt (only to queued)."""
    if old is None:
        return new is CallStatus.QUEUED
    return new in ALLOWED.get(old, frozenset())


def check_transition(old: CallStatus | None, new: CallStatus) -> None:
    """Raise `IllegalTransition` unless `old -> new` is legal."""
    if not can_transition(old, new):
        raise IllegalTransition(f"{old} -> {new} is not a legal status change")


_FROM_CARRIER = {
    CarrierStatus.INITIATED: CallStatus.INITIATED,
    CarrierStatus.RINGING: CallStatus.RINGING,
    CarrierStatus.ANSWERED: CallStatus.ANSWERED,
    CarrierStatus.COMPLETED: CallStatus.COMPLETED,
    CarrierStatus.BUSY: CallStatus.BUSY,
    CarrierStatus.NO_ANSWER: CallStatus.NO_ANSWER,
    CarrierStatus.DECLINED: CallStatus.DECLINED,
    CarrierStatus.FAILED: CallStatus.FAILED,
    CarrierStatus.CANCELED: CallStatus.CANCELED,
}


def from_carrier(status: CarrierStatus) -> CallStatus:
    """The attempt status a carrier status moves to."""
    return _FROM_CARRIER[status]
