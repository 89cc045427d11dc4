"""Which call endings are retried, when, and how many times.

A carrier ending maps to a trigger (busy, declined, no answer); `failed`
and every other ending are their own outcome and never retried by those
triggers. One cap counts every retry of a contact, whatever its trigger:
`max_retries` is the number of attempts after the first.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import msgspec

from mediaserver.controller.status import CallStatus


class RetryPolicyLike(Protocol):
    """The campaign's `retry` block, as far as retries need it."""

    @property
    def on_busy(self) -> bool: ...
    @property
    def on_declined(self) -> bool: ...
    @property
    def on_no_answer(self) -> bool: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def delay_s(self) -> int: ...


class Retry(msgspec.Struct, frozen=True, kw_only=True):
    attempt_number: int  # of the new attempt
    scheduled_for: dt.datetime
    trigger: str


_TRIGGERS = {
    CallStatus.BUSY: "busy",
    CallStatus.DECLINED: "declined",
    CallStatus.NO_ANSWER: "no_answer",
}


def trigger_for(ending: CallStatus) -> str | None:
    """The retry trigger an ending fires, or None (failed, completed, ...)."""
    return _TRIGGERS.get(ending)


def plan_retry(
    policy: RetryPolicyLike,
    ending: CallStatus,
    attempt_number: int,
    ended_at: dt.datetime,
) -> Retry | None:
    """The next attempt after `attempt_number` ended with `ending`, if any."""
    trigger = trigger_for(ending)
    if trigger is None or not getattr(policy, f"on_{trigger}"):
        return None
    if attempt_number - 1 >= policy.max_retries:
        return None
    return Retry(
        attempt_number=attempt_number + 1,
        scheduled_for=ended_at + dt.timedelta(seconds=max(0, policy.delay_s)),
        trigger=trigger,
    )
