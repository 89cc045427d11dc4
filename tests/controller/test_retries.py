"""Retry triggers, the one cap per contact, and the delay."""

from __future__ import annotations

import datetime as dt

from mediaserver.controller.campaign import RetryPolicy
from mediaserver.controller.retries import plan_retry, trigger_for
from mediaserver.controller.status import CallStatus

ENDED = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
ALL = RetryPolicy(
    on_busy=True, on_declined=True, on_no_answer=True, max_retries=2, delay_s=600
)


def test_triggers_map_from_endings() -> None:
    assert trigger_for(CallStatus.BUSY) == "busy"
    assert trigger_for(CallStatus.DECLINED) == "declined"
    assert trigger_for(CallStatus.NO_ANSWER) == "no_answer"
    for own in (CallStatus.FAILED, CallStatus.COMPLETED, CallStatus.INITIATION_FAILED):
        assert trigger_for(own) is None


def test_cap_counts_every_trigger_together() -> None:
    # busy, then no answer, then declined: the third ending is past the cap.
    first = plan_retry(ALL, CallStatus.BUSY, 1, ENDED)
    assert first is not None
    assert first.attempt_number == 2
    second = plan_retry(ALL, CallStatus.NO_ANSWER, first.attempt_number, ENDED)
    assert second is not None
    assert second.attempt_number == 3
    assert plan_retry(ALL, CallStatus.DECLINED, second.attempt_number, ENDED) is None


def test_delay_is_honoured() -> None:
    retry = plan_retry(ALL, CallStatus.BUSY, 1, ENDED)
    assert retry is not None
    assert retry.scheduled_for == ENDED + dt.timedelta(seconds=600)


def test_disabled_trigger_and_failed_are_not_retried() -> None:
    only_busy = RetryPolicy(
        on_busy=True, on_declined=False, on_no_answer=False, max_retries=5
    )
    assert plan_retry(only_busy, CallStatus.DECLINED, 1, ENDED) is None
    assert plan_retry(only_busy, CallStatus.NO_ANSWER, 1, ENDED) is None
    assert plan_retry(ALL, CallStatus.FAILED, 1, ENDED) is None


def test_zero_retries_means_one_attempt() -> None:
    none = RetryPolicy(on_busy=True, max_retries=0)
    assert plan_retry(none, CallStatus.BUSY, 1, ENDED) is None
