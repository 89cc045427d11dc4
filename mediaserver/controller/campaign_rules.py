"""The rules a campaign must meet beyond its types, each error under its path.

`campaign_errors` returns every broken rule at once, keyed by the dotted
path of the field (`caller_id.overrides[2].prefix`, `retry.max_retries`),
so a form can mark each bad field in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from mediaserver.controller.campaign import (
    PROVIDERS,
    WEEKDAYS,
    CallerIdPolicy,
    CallingNumber,
    CallingWindow,
    Campaign,
    RetryPolicy,
    VariableSpec,
)
from mediaserver.controller.numbers import (
    NumberError,
    is_country_prefix,
    is_region,
    normalise_number,
)
from mediaserver.controller.variables import NAME, coerce_value

Errors = dict[str, str]

LIFECYCLE_EVENTS = (
    "call_initiation_failure",
    "call_initiated",
    "call_declined",
    "call_missed",
    "call_answered",
    "call_ended",
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PREFIX = re.compile(r"^\+[1-9]\d{0,14}$")
_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


def campaign_errors(campaign: Campaign) -> Errors:
    """Every rule `campaign` breaks, by field path; empty when it is valid."""
    errors: Errors = {}
    _check_identity(campaign, errors)
    _check_caller_id(campaign.caller_id, errors)
    _check_retry(campaign.retry, errors)
    _check_amd(campaign, errors)
    _check_specs(campaign.variables, "variables", errors)
    _check_specs(campaign.metadata, "metadata", errors)
    _check_actions(campaign.actions, errors)
    _check_window(campaign.calling_window, errors)
    _check_pacing(campaign, errors)
    return errors


def _check_identity(campaign: Campaign, errors: Errors) -> None:
    if campaign.id and not _ID.match(campaign.id):
        errors["id"] = "1-64 letters, digits, '_', '.' or '-'"
    if not campaign.name.strip():
        errors["name"] = "must not be empty"
    elif len(campaign.name) > 200:
        errors["name"] = "at most 200 characters"
    if campaign.provider not in PROVIDERS:
        errors["provider"] = f"one of {', '.join(PROVIDERS)}"
    if not is_region(campaign.default_region):
        errors["default_region"] = "an ISO 3166 region code such as US or GB"

    url = urlsplit(campaign.agent_url)
    if url.scheme not in ("ws", "wss"):
        errors["agent_url"] = "must be a ws:// or wss:// URL"
    elif not url.hostname:
        errors["agent_url"] = "has no host"


def _check_number(number: CallingNumber, path: str, errors: Errors) -> None:
    if not number.id.strip():
        errors[f"{path}.id"] = "must not be empty"
    if number.provider and number.provider not in PROVIDERS:
        errors[f"{path}.provider"] = f"one of {', '.join(PROVIDERS)}"
    try:
        canonical = normalise_number(number.number)
    except NumberError as exc:
        errors[f"{path}.number"] = f"must be an E.164 number: {exc}"
        return
    if canonical != number.number:
        errors[f"{path}.number"] = f"must be written in E.164, as {canonical}"


def _check_caller_id(policy: CallerIdPolicy, errors: Errors) -> None:
    _check_number(policy.default, "caller_id.default", errors)
    numbers_by_id = {policy.default.id: policy.default.number}
    seen: dict[str, int] = {}

    for index, override in enumerate(policy.overrides):
        path = f"caller_id.overrides[{index}]"
        prefix = override.prefix
        if not _PREFIX.match(prefix):
            errors[f"{path}.prefix"] = "a + then digits, e.g. +968 or +1212"
        elif not is_country_prefix(prefix):
            errors[f"{path}.prefix"] = "does not start with a country calling code"
        elif prefix in seen:
            errors[f"{path}.prefix"] = f"duplicates caller_id.overrides[{seen[prefix]}]"
        else:
            seen[prefix] = index

        _check_number(override.number, f"{path}.number", errors)
        known = numbers_by_id.setdefault(override.number.id, override.number.number)
        if known != override.number.number:
            errors[f"{path}.number.id"] = "this id already names another number"


def _check_retry(retry: RetryPolicy, errors: Errors) -> None:
    if not 0 <= retry.max_retries <= 10:
        errors["retry.max_retries"] = "between 0 and 10"
    if not 0 <= retry.delay_s <= 7 * 86400:
        errors["retry.delay_s"] = "between 0 and 604800 seconds (7 days)"


def _check_amd(campaign: Campaign, errors: Errors) -> None:
    amd = campaign.amd
    if not 500 <= amd.initial_check_delay_ms <= 10_000:
        errors["amd.initial_check_delay_ms"] = "between 500 and 10000 ms"
    if not 1000 <= amd.decision_deadline_ms <= 30_000:
        errors["amd.decision_deadline_ms"] = "between 1000 and 30000 ms"
    elif amd.initial_check_delay_ms > amd.decision_deadline_ms:
        errors["amd.initial_check_delay_ms"] = "must not exceed decision_deadline_ms"
    if not 1000 <= amd.leave_message_cap_ms <= 120_000:
        errors["amd.leave_message_cap_ms"] = "between 1000 and 120000 ms"
    if not 100 <= amd.llm_deadline_ms <= 10_000:
        errors["amd.llm_deadline_ms"] = "between 100 and 10000 ms"
    if not 0.0 < amd.vad_threshold < 1.0:
        errors["amd.vad_threshold"] = "between 0 and 1, exclusive"
    if not 0 < amd.beep_min_hz < amd.beep_max_hz <= 4000:
        errors["amd.beep_max_hz"] = (
            "0 < beep_min_hz < beep_max_hz <= 4000 (8 kHz audio)"
        )


def _check_specs(specs: Sequence[VariableSpec], field: str, errors: Errors) -> None:
    first: dict[str, int] = {}
    for index, spec in enumerate(specs):
        path = f"{field}[{index}]"
        key = spec.name.lower()
        if not NAME.match(spec.name):
            errors[f"{path}.name"] = (
                "letters, digits and '_', not starting with a digit"
            )
        elif key in first:
            errors[f"{path}.name"] = (
                f"duplicates {field}[{first[key]}] (names ignore case)"
            )
        else:
            first[key] = index

        if spec.default is None:
            continue
        if spec.required:
            errors[f"{path}.default"] = "a required value takes no default"
            continue
        try:
            coerce_value(spec.type, spec.default)
        except ValueError as exc:
            errors[f"{path}.default"] = f"not a valid {spec.type}: {exc}"


def _check_actions(actions: Sequence[dict[str, Any]], errors: Errors) -> None:
    """The event names only; the actions module checks tools and mappings."""
    for index, action in enumerate(actions):
        if action.get("event") not in LIFECYCLE_EVENTS:
            errors[f"actions[{index}].event"] = f"one of {', '.join(LIFECYCLE_EVENTS)}"


def _check_window(window: CallingWindow, errors: Errors) -> None:
    if not _CLOCK.match(window.start):
        errors["calling_window.start"] = "a time as HH:MM, 00:00 to 23:59"
    if not (_CLOCK.match(window.end) or window.end == "24:00"):
        errors["calling_window.end"] = "a time as HH:MM, 00:00 to 24:00"
    elif window.start == window.end:
        errors["calling_window.end"] = "must differ from start"

    if not window.days:
        errors["calling_window.days"] = "at least one day"
    for index, day in enumerate(window.days):
        if day not in WEEKDAYS:
            errors[f"calling_window.days[{index}]"] = f"one of {', '.join(WEEKDAYS)}"
        elif window.days.index(day) != index:
            errors[f"calling_window.days[{index}]"] = "listed twice"


def _check_pacing(campaign: Campaign, errors: Errors) -> None:
    if not 1 <= campaign.max_concurrent_calls <= 10_000:
        errors["max_concurrent_calls"] = "between 1 and 10000"
    if not 0 < campaign.calls_per_second <= 1000:
        errors["calls_per_second"] = "above 0 and at most 1000"
    if not 5 <= campaign.ring_timeout_s <= 180:
        errors["ring_timeout_s"] = "between 5 and 180 seconds"
    if not 10 <= campaign.max_call_s <= 4 * 3600:
        errors["max_call_s"] = "between 10 and 14400 seconds"
