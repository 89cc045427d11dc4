"""Lifecycle events and the exact variables each one carries.

The names and per-event sets are the product's (seed: "Actions (Webhooks)"
and "Post-Analysis" context variables); a mapping may only name a variable
of its event, and a fired event carries exactly its set, no more.

`variables_for` builds an event's variables from a call attempt row (the
queue's seed fields) and, where the event has them, the conversation.
Datetimes become ISO 8601 UTC strings; JSON fields stay JSON values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class LifecycleEvent(StrEnum):
    CALL_INITIATION_FAILURE = "call_initiation_failure"
    CALL_INITIATED = "call_initiated"
    CALL_DECLINED = "call_declined"
    CALL_MISSED = "call_missed"
    CALL_ANSWERED = "call_answered"
    CALL_ENDED = "call_ended"


class VarType(StrEnum):
    """The seed's variable types."""

    STRING = "string"
    DATETIME = "datetime"
    OBJECT = "object"  # a JSON object, or for conversation_turns a JSON array


# Every variable any event (or the post-analysis context) carries, typed.
VARIABLE_TYPES: dict[str, VarType] = {
    "call_queue_id": VarType.STRING,
    "call_queue_created_at": VarType.DATETIME,
    "call_queue_enqueued_at": VarType.DATETIME,
    "call_queue_processing_started_at": VarType.DATETIME,
    "call_queue_completed_at": VarType.DATETIME,
    "call_queue_status": VarType.STRING,
    "call_queue_campaign_id": VarType.STRING,
    "call_queue_route_id": VarType.STRING,
    "call_queue_calling_number_id": VarType.STRING,
    "call_queue_calling_number_provider": VarType.STRING,
    "call_queue_provider_call_id": VarType.STRING,
    "call_queue_recipient_number": VarType.STRING,
    "call_queue_scheduled_for_date_time": VarType.DATETIME,
    "call_queue_dynamic_variables": VarType.OBJECT,
    "call_queue_metadata": VarType.OBJECT,
    "call_queue_initiation_error": VarType.STRING,
    "conversation_id": VarType.STRING,
    "conversation_start_time": VarType.DATETIME,
    "conversation_end_time": VarType.DATETIME,
    "conversation_end_type": VarType.STRING,
    "conversation_turns": VarType.OBJECT,
    "conversation_turns_simplified": VarType.STRING,
}

# The head every event shares (seed tables 1-5, in the seed's order).
_QUEUE_VARS = (
    "call_queue_id",
    "call_queue_created_at",
    "call_queue_enqueued_at",
    "call_queue_processing_started_at",
    "call_queue_completed_at",
    "call_queue_status",
    "call_queue_campaign_id",
    "call_queue_calling_number_id",
    "call_queue_calling_number_provider",
    "call_queue_provider_call_id",
    "call_queue_recipient_number",
    "call_queue_scheduled_for_date_time",
    "call_queue_dynamic_variables",
    "call_queue_metadata",
)

EVENT_VARIABLES: dict[LifecycleEvent, tuple[str, ...]] = {
    LifecycleEvent.CALL_INITIATION_FAILURE: (
        *_QUEUE_VARS,
        "call_queue_initiation_error",
    ),
    LifecycleEvent.CALL_INITIATED: (*_QUEUE_VARS, "conversation_id"),
    LifecycleEvent.CALL_DECLINED: (*_QUEUE_VARS, "conversation_id"),
    LifecycleEvent.CALL_MISSED: (*_QUEUE_VARS, "conversation_id"),
    LifecycleEvent.CALL_ANSWERED: (
        *_QUEUE_VARS,
        "conversation_id",
        "conversation_start_time",
    ),
    LifecycleEvent.CALL_ENDED: (
        *_QUEUE_VARS,
        "conversation_id",
        "conversation_start_time",
        "conversation_end_time",
        "conversation_end_type",
        "conversation_turns",
        "conversation_turns_simplified",
    ),
}

# Seed "Post-Analysis" context: no campaign id or schedule, but a route id.
ANALYSIS_VARIABLES: tuple[str, ...] = (
    "call_queue_id",
    "call_queue_created_at",
    "call_queue_enqueued_at",
    "call_queue_processing_started_at",
    "call_queue_completed_at",
    "call_queue_status",
    "call_queue_route_id",
    "call_queue_calling_number_id",
    "call_queue_calling_number_provider",
    "call_queue_provider_call_id",
    "call_queue_recipient_number",
    "conversation_id",
    "conversation_start_time",
    "conversation_end_time",
    "conversation_end_type",
    "conversation_turns",
    "conversation_turns_simplified",
)


def iso(value: Any) -> Any:
    """A datetime as ISO 8601 UTC text; anything else unchanged."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


def all_variables(
    attempt: Mapping[str, Any], conversation: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every variable's value for one attempt, before an event picks its set.

    `attempt` has the queue's seed fields (id, created_at, ..., metadata);
    `conversation` the conversation record's (started_at, ended_at,
    end_type, turns, transcript), when there is one.
    """
    conv = conversation or {}
    values: dict[str, Any] = {
        "call_queue_id": attempt.get("id"),
        "call_queue_created_at": attempt.get("created_at"),
        "call_queue_enqueued_at": attempt.get("enqueued_at"),
        "call_queue_processing_started_at": attempt.get("processing_started_at"),
        "call_queue_completed_at": attempt.get("completed_at"),
        "call_queue_status": attempt.get("status"),
        "call_queue_campaign_id": attempt.get("campaign_id"),
        # An outbound call's route is its campaign: the seed's route id names
        # what sent the call on its way, for inbound an inbound route.
        "call_queue_route_id": attempt.get("campaign_id"),
        "call_queue_calling_number_id": attempt.get("calling_number_id"),
        "call_queue_calling_number_provider": attempt.get("calling_number_provider"),
        "call_queue_provider_call_id": attempt.get("provider_call_id"),
        "call_queue_recipient_number": attempt.get("recipient_number"),
        "call_queue_scheduled_for_date_time": attempt.get("scheduled_for"),
        "call_queue_dynamic_variables": attempt.get("dynamic_variables") or {},
        "call_queue_metadata": attempt.get("metadata") or {},
        "call_queue_initiation_error": attempt.get("initiation_error"),
        "conversation_id": conv.get("conversation_id")
        or attempt.get("conversation_id"),
        "conversation_start_time": conv.get("started_at"),
        "conversation_end_time": conv.get("ended_at"),
        "conversation_end_type": conv.get("end_type"),
        "conversation_turns": conv.get("turns") or [],
        "conversation_turns_simplified": conv.get("transcript") or "",
    }
    return {name: iso(value) for name, value in values.items()}


def variables_for(
    event: LifecycleEvent,
    attempt: Mapping[str, Any],
    conversation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Exactly the variables `event` carries, in the seed's order."""
    values = all_variables(attempt, conversation)
    return {name: values[name] for name in EVENT_VARIABLES[event]}


def analysis_context(
    attempt: Mapping[str, Any], conversation: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Exactly the seed's post-analysis context variables."""
    values = all_variables(attempt, conversation)
    return {name: values[name] for name in ANALYSIS_VARIABLES}


def event_for_transition(
    old_status: str | None, new_status: str
) -> LifecycleEvent | None:
    """The lifecycle event a status change fires, if any.

    A busy line is a rejection (declined); a call that never connects,
    rings out or fails before an answer is missed. "completed" is the
    carrier's word for an answered call that ended, even when its answer
    was never reported; a failure or cancel after the answer also ends it.
    """
    if new_status == "initiation_failed":
        return LifecycleEvent.CALL_INITIATION_FAILURE
    if new_status == "initiated":
        return LifecycleEvent.CALL_INITIATED
    if new_status == "answered":
        return LifecycleEvent.CALL_ANSWERED
    if new_status == "completed" or (
        old_status == "answered" and new_status in ("failed", "canceled")
    ):
        return LifecycleEvent.CALL_ENDED
    if new_status in ("declined", "busy"):
        return LifecycleEvent.CALL_DECLINED
    if new_status in ("no_answer", "failed"):
        return LifecycleEvent.CALL_MISSED
    return None
