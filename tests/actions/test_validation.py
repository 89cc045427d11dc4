"""Mapping validation: every fault is refused at save time, each one named."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mediaserver.controller.actions import (
    Action,
    Constant,
    FieldSpec,
    PostAnalysisTemplate,
    Tool,
    build_input,
    validate_actions,
)
from mediaserver.controller.events import EVENT_VARIABLES, LifecycleEvent
from mediaserver.controller.tools import schema_faults
from mediaserver.errors import ValidationError
from tests.actions.helpers import CampaignStub, every_event_campaign

CRM = Tool(
    name="crm",
    url="https://crm.example.invalid/calls",
    input_schema={
        "type": "object",
        "properties": {
            "call_id": {"type": "string"},
            "started": {"type": "string"},
            "vars": {"type": "object"},
            "turns": {"type": "array"},
            "source": {"type": "string", "enum": ["callwright", "other"]},
            "priority": {"type": "integer"},
        },
        "required": ["call_id", "source"],
    },
)


def _faults(*actions: Any, **kw: Any) -> dict[str, str]:
    return validate_actions(CampaignStub(actions=list(actions), tools=[CRM], **kw))


def test_a_complete_mapping_for_every_event_is_accepted() -> None:
    assert (
        validate_actions(every_event_campaign("https://hooks.example.invalid/")) == {}
    )


def test_a_variable_the_event_lacks_is_named() -> None:
    action = {
        "event": "call_initiated",
        "tool": "crm",
        "mapping": {
            "call_id": "call_queue_id",
            "source": {"const": "callwright"},
            "started": "conversation_start_time",  # only from answered on
            "vars": "customer_name",  # a script variable, not an event variable
        },
    }
    faults = _faults(action)
    assert set(faults) == {"actions[0].mapping.started", "actions[0].mapping.vars"}
    assert (
        "call_initiated has no variable 'conversation_start_time'"
        in (faults["actions[0].mapping.started"])
    )
    assert "'customer_name'" in faults["actions[0].mapping.vars"]


def test_unfilled_required_inputs_are_each_named() -> None:
    faults = _faults({"event": "call_answered", "tool": "crm", "mapping": {}})
    assert set(faults) == {"actions[0].mapping.call_id", "actions[0].mapping.source"}
    assert all("required input" in why for why in faults.values())


def test_inputs_types_and_constants_are_checked() -> None:
    action = {
        "event": "call_ended",
        "tool": "crm",
        "mapping": {
            "call_id": "call_queue_id",
            "source": {"const": "somewhere"},  # not in the enum
            "priority": {"const": "high"},  # not an integer
            "turns": "conversation_turns_simplified",  # a string, not an array
            "vars": "call_queue_dynamic_variables",
            "nope": "call_queue_id",  # the tool has no such input
        },
    }
    faults = _faults(action)
    assert set(faults) == {
        "actions[0].mapping.source",
        "actions[0].mapping.priority",
        "actions[0].mapping.turns",
        "actions[0].mapping.nope",
    }
    assert "no input 'nope'" in faults["actions[0].mapping.nope"]


def test_unknown_events_tools_and_bad_tool_definitions() -> None:
    bad_tool = msgspec.to_builtins(CRM) | {
        "url": "ftp://x",
        "method": "GET",
        "timeout_s": 0,
    }
    faults = _faults(
        {"event": "call_exploded", "tool": "crm", "mapping": {}},
        {"event": "call_ended", "tool": "erp", "mapping": {}},
        {"event": "call_ended", "tool": bad_tool, "mapping": {}},
    )
    assert "unknown event 'call_exploded'" in faults["actions[0].event"]
    assert faults["actions[1].tool"] == "no custom tool named 'erp'"
    assert {
        "actions[2].tool.url",
        "actions[2].tool.method",
        "actions[2].tool.timeout_s",
    } <= (set(faults))


def test_post_analysis_templates_are_checked() -> None:
    template = {
        "name": "outcome",
        "tags": ["a", "a"],
        "fields": [
            {"name": "summary", "type": "string"},
            {"name": "n", "type": "bool"},
        ],
    }
    faults = validate_actions(CampaignStub(post_analysis=template))
    assert set(faults) == {"post_analysis.fields[1].type"}  # "bool" is not a type

    template["fields"] = [
        {"name": "summary"},
        {"name": "x", "type": "integer", "enum": ["1"]},
    ]
    faults = validate_actions(CampaignStub(post_analysis=template))
    assert set(faults) == {
        "post_analysis.tags",
        "post_analysis.fields[0].name",
        "post_analysis.fields[1].enum",
    }
    good = PostAnalysisTemplate(
        name="ok", tags=["hot", "cold"], max_tags=1, fields=[FieldSpec(name="budget")]
    )
    assert validate_actions(CampaignStub(post_analysis=good)) == {}


def test_the_campaign_validator_refuses_through_the_actions_module() -> None:
    campaign_module = pytest.importorskip("mediaserver.controller.campaign")
    action = {
        "event": "call_initiated",
        "tool": msgspec.to_builtins(CRM),
        "mapping": {"call_id": "conversation_end_type"},
    }
    data = {
        "name": "Renewals",
        "agent_url": "ws://127.0.0.1:9000/agent",
        "caller_id": {"default": {"id": "num-1", "number": "+14155550000"}},
        "actions": [action],
    }
    with pytest.raises(ValidationError) as caught:
        campaign_module.parse_campaign(data)
    errors = caught.value.errors
    assert "call_initiated has no variable" in errors["actions[0].mapping.call_id"]
    assert "required input" in errors["actions[0].mapping.source"]

    action["mapping"] = {"call_id": "call_queue_id", "source": {"const": "callwright"}}
    campaign = campaign_module.parse_campaign(data)
    assert campaign.actions[0]["mapping"]["call_id"] == "call_queue_id"


def test_build_input_fills_from_variables_and_constants() -> None:
    action = Action(
        event="call_answered",
        tool=CRM,
        mapping={
            "call_id": "call_queue_id",
            "source": Constant("callwright"),
            "started": "conversation_start_time",
        },
    )
    variables = dict.fromkeys(EVENT_VARIABLES[LifecycleEvent.CALL_ANSWERED])
    variables["call_queue_id"] = "call-1"
    assert build_input(action, variables) == {
        "call_id": "call-1",
        "source": "callwright",
    }
    assert schema_faults(build_input(action, variables), CRM.input_schema) == {}


def test_schema_subset_names_each_fault() -> None:
    schema = CRM.input_schema
    faults = schema_faults({"call_id": 5, "source": "x", "priority": 1.5}, schema)
    assert set(faults) == {"call_id", "source", "priority"}
    assert schema_faults({"call_id": "c"}, schema) == {"source": "required"}
    with pytest.raises(ValidationError):
        raise ValidationError(faults)


def test_the_documented_action_and_template_are_accepted() -> None:
    campaign_module = pytest.importorskip("mediaserver.controller.campaign")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    blocks = [part.split("```", 1)[0] for part in doc.split("```toml\n")[1:]]
    assert len(blocks) == 2
    head = (
        'name = "Renewals"\n'
        'agent_url = "ws://127.0.0.1:9000/agent"\n'
        '[caller_id.default]\nid = "num-1"\nnumber = "+14155550000"\n'
    )
    data = tomllib.loads(head + "\n".join(blocks))
    campaign = campaign_module.parse_campaign(data)
    assert campaign.actions[0]["mapping"]["source"] == {"const": "callwright"}
    assert campaign.post_analysis["fields"][1]["required"] is False
