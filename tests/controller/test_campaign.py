"""Campaign parsing and validation: every bad field named by its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from mediaserver.controller.campaign import (
    Campaign,
    campaign_to_builtins,
    load_campaign_toml,
    parse_campaign,
)
from mediaserver.errors import ConfigError, ValidationError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example-campaign.toml"


def _minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Renewals",
        "agent_url": "wss://agent.example.test/ws",
        "caller_id": {"default": {"id": "main", "number": "+12125550100"}},
    }
    data.update(changes)
    return data


def _errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_campaign(data)
    return caught.value.errors


def test_minimal_campaign_gets_defaults_and_the_campaign_provider() -> None:
    campaign = parse_campaign(_minimal(provider="telnyx"))
    assert campaign.provider == "telnyx"
    assert campaign.caller_id.default.provider == "telnyx"  # filled in
    assert campaign.retry.max_retries == 2
    assert campaign.calling_window.days == [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    ]


def test_every_bad_field_is_named_with_its_path() -> None:
    data = _minimal(
        name=" ",
        provider="plivo",
        agent_url="https://agent.example.test/ws",
        default_region="XX",
        caller_id={
            "default": {"id": "main", "number": "+1 212 555 0100"},
            "overrides": [
                {"prefix": "+968", "number": {"id": "om", "number": "+96892123456"}},
                {"prefix": "968", "number": {"id": "om2", "number": "+96892123457"}},
                {"prefix": "+968", "number": {"id": "om3", "number": "+96892123458"}},
                {"prefix": "+9", "number": {"id": "x", "number": "+12"}},
                {"prefix": "+1212", "number": {"id": "om", "number": "+12125550199"}},
            ],
        },
        retry={"max_retries": 11, "delay_s": -1},
        amd={"initial_check_delay_ms": 50},
        variables=[
            {"name": "customer_name"},
            {"name": "Customer_Name"},
            {"name": "2fast"},
            {"name": "age", "type": "integer", "default": "forty"},
            {"name": "ok", "type": "boolean", "required": True, "default": True},
        ],
        metadata=[{"name": "crm id"}],
        calling_window={
            "start": "9:00",
            "end": "25:00",
            "days": ["mon", "mon", "funday"],
        },
        max_concurrent_calls=0,
        calls_per_second=0,
        ring_timeout_s=1,
        max_call_s=5,
    )
    errors = _errors(data)
    assert set(errors) == {
        "name",
        "provider",
        "agent_url",
        "default_region",
        "caller_id.default.number",
        "caller_id.overrides[1].prefix",  # no +
        "caller_id.overrides[2].prefix",  # duplicate of [0]
        "caller_id.overrides[3].prefix",  # no country code 9
        "caller_id.overrides[3].number.number",
        "caller_id.overrides[4].number.id",  # id reused for another number
        "retry.max_retries",
        "retry.delay_s",
        "amd.initial_check_delay_ms",
        "variables[1].name",
        "variables[2].name",
        "variables[3].default",
        "variables[4].default",
        "metadata[0].name",
        "calling_window.start",
        "calling_window.end",
        "calling_window.days[1]",
        "calling_window.days[2]",
        "max_concurrent_calls",
        "calls_per_second",
        "ring_timeout_s",
        "max_call_s",
    }
    assert "overrides[0]" in errors["caller_id.overrides[2].prefix"]
    assert "+12125550100" in errors["caller_id.default.number"]  # the fix, spelled out
    assert "variables[0]" in errors["variables[1].name"]


def test_a_valid_campaign_passes_each_rule_at_its_edge() -> None:
    campaign = parse_campaign(
        _minimal(
            caller_id={
                "default": {"id": "main", "number": "+12125550100"},
                "overrides": [
                    {"prefix": "+1", "number": {"id": "a", "number": "+13125550100"}},
                    {
                        "prefix": "+1212",
                        "number": {"id": "b", "number": "+12125550111"},
                    },
                ],
            },
            retry={"max_retries": 10, "delay_s": 0},
            calling_window={"start": "00:00", "end": "24:00", "days": ["sun"]},
            max_concurrent_calls=10_000,
            calls_per_second=1000,
        )
    )
    assert [o.prefix for o in campaign.caller_id.overrides] == ["+1", "+1212"]


def test_wrong_type_names_the_field_path() -> None:
    errors = _errors(_minimal(retry={"max_retries": "3"}))
    assert list(errors) == ["retry.max_retries"]
    errors = _errors(
        _minimal(
            caller_id={
                "default": {"id": "m", "number": "+12125550100"},
                "overrides": [{"prefix": "+1", "number": {"id": 1}}],
            }
        )
    )
    assert list(errors) == ["caller_id.overrides[0].number.id"]


def test_unknown_fields_are_refused() -> None:
    errors = _errors(_minimal(max_retries=3))
    assert "max_retries" in next(iter(errors.values()))


def test_unknown_action_event_is_named() -> None:
    errors = _errors(
        _minimal(
            actions=[
                {
                    "event": "call_exploded",
                    "tool": {"name": "crm", "url": "http://127.0.0.1:9/hook"},
                }
            ]
        )
    )
    assert "actions[0].event" in errors


def test_example_campaign_file_loads() -> None:
    campaign = load_campaign_toml(EXAMPLE)
    assert campaign.id == "renewals-2026"
    assert campaign.caller_id.overrides[0].prefix == "+968"
    assert [v.name for v in campaign.variables] == [
        "customer_name",
        "renewal_date",
        "premium",
    ]
    assert campaign.amd.initial_check_delay_ms == 2500


def test_builtins_round_trip() -> None:
    campaign = load_campaign_toml(EXAMPLE)
    again = parse_campaign(
        msgspec.json.decode(msgspec.json.encode(campaign_to_builtins(campaign)))
    )
    assert again == campaign
    assert isinstance(again, Campaign)


def test_bad_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_campaign_toml(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError):
        load_campaign_toml(broken)
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(EXAMPLE.read_text().replace('prefix = "+968"', 'prefix = "968"'))
    with pytest.raises(ValidationError) as caught:
        load_campaign_toml(invalid)
    assert list(caught.value.errors) == ["caller_id.overrides[0].prefix"]


def test_actions_module_errors_are_merged_under_their_paths() -> None:
    errors = _errors(
        _minimal(
            actions=[
                {"event": "call_answered", "tool": {"name": "crm", "url": "ftp://x/y"}},
                {"event": "call_ended", "tool": {"name": "crm"}},  # no url at all
            ],
            retry={"max_retries": -1},
        )
    )
    assert "actions[0].tool.url" in errors  # from the actions validator
    assert "retry.max_retries" in errors  # ours, reported alongside
    assert any(key.startswith("actions[1]") for key in errors)


def test_post_analysis_of_the_wrong_shape_is_named() -> None:
    errors = _errors(_minimal(post_analysis={"name": "summary", "max_tags": "three"}))
    assert list(errors) == ["post_analysis.max_tags"]
