"""prepare_launch: one API launch normalised, routed and checked."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mediaserver.controller.campaign import Campaign, parse_campaign
from mediaserver.controller.launch import prepare_launch
from mediaserver.errors import ValidationError


def _campaign(**changes: Any) -> Campaign:
    data: dict[str, Any] = {
        "id": "launch-test",
        "name": "Launch test",
        "agent_url": "ws://127.0.0.1:9/agent",
        "default_region": "GB",
        "caller_id": {
            "default": {"id": "uk", "number": "+447400123456", "provider": "twilio"},
            "overrides": [
                {"prefix": "+968", "number": {"id": "om", "number": "+96892123456"}},
            ],
        },
        "variables": [
            {"name": "customer_name", "required": True},
            {"name": "visits", "type": "integer", "default": 1},
        ],
        "metadata": [{"name": "crm_id", "required": True}],
    }
    data.update(changes)
    return parse_campaign(data)


def test_launch_is_normalised_routed_and_defaulted() -> None:
    launch = prepare_launch(
        _campaign(),
        "07400 123457",
        {"customer_name": "Ahmed"},
        {"crm_id": "C-9"},
    )
    assert launch.number == "+447400123457"
    assert launch.campaign_id == "launch-test"
    assert launch.variables == {"customer_name": "Ahmed", "visits": 1}
    assert launch.metadata == {"crm_id": "C-9"}
    assert launch.calling_number is not None
    assert launch.calling_number.id == "uk"
    assert "Europe/London" in launch.timezones  # with Jersey, Guernsey, Man
    assert launch.scheduled_for is None


def test_override_routes_oman_and_fills_the_campaign_provider() -> None:
    launch = prepare_launch(
        _campaign(provider="telnyx"),
        "+968 9212 3457",
        {"customer_name": "A"},
        {"crm_id": "1"},
    )
    assert launch.calling_number is not None
    assert launch.calling_number.id == "om"
    assert launch.calling_number.provider == "telnyx"


def test_missing_required_values_fail_the_launch_naming_each() -> None:
    with pytest.raises(ValidationError) as caught:
        prepare_launch(_campaign(), "+447400123457", {}, {})
    assert caught.value.errors == {
        "variables.customer_name": "required but not given",
        "metadata.crm_id": "required but not given",
    }


def test_every_bad_field_is_reported_together() -> None:
    with pytest.raises(ValidationError) as caught:
        prepare_launch(
            _campaign(),
            "4.47400123457E+11",
            {"customer_name": "A", "visits": "many", "extra": 1},
            {"crm_id": "1"},
            "soon",
            "Europe/Atlantis",
        )
    assert set(caught.value.errors) == {
        "number",
        "variables.visits",
        "variables.extra",
        "scheduled_for",
        "timezone",
    }


def test_scheduled_for_becomes_aware_utc() -> None:
    campaign = _campaign()
    args = ("+447400123457", {"customer_name": "A"}, {"crm_id": "1"})
    summer = prepare_launch(campaign, *args, "2026-07-01T10:00")  # BST, UTC+1
    assert summer.scheduled_for == dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)
    paris = prepare_launch(campaign, *args, "2026-12-05T10:00", "Europe/Paris")
    assert paris.scheduled_for == dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
    assert paris.timezone == "Europe/Paris"
    assert paris.timezones == ("Europe/Paris",)
    offset = prepare_launch(
        campaign,
        *args,
        dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=4))),
    )
    assert offset.scheduled_for == dt.datetime(2026, 12, 5, 6, 0, tzinfo=dt.UTC)
    assert offset.scheduled_for.tzinfo is dt.UTC


def test_naive_time_needs_a_known_zone() -> None:
    # A toll-free US number spans every US zone: a naive time is ambiguous.
    campaign = _campaign(default_region="US")
    args = ("1-800-356-9377", {"customer_name": "A"}, {"crm_id": "1"})
    with pytest.raises(ValidationError) as caught:
        prepare_launch(campaign, *args, "2026-12-05T10:00")
    assert "timezone" in caught.value.errors["scheduled_for"]
    ok = prepare_launch(campaign, *args, "2026-12-05T10:00", "America/Chicago")
    assert ok.scheduled_for == dt.datetime(2026, 12, 5, 16, 0, tzinfo=dt.UTC)
