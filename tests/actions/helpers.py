"""Shared builders for the actions tests (campaign objects, attempts, tools)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from mediaserver.controller.actions import Action, PostAnalysisTemplate, Tool
from mediaserver.controller.events import EVENT_VARIABLES, LifecycleEvent
from mediaserver.store.queue import NewAttempt

T0 = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)

_JSON_TYPE = {"call_queue_dynamic_variables": "object", "call_queue_metadata": "object"}


class CampaignStub(msgspec.Struct, kw_only=True):
    """The two campaign fields the actions module reads."""

    id: str = "camp-1"
    actions: list[Any] = []
    post_analysis: Any = None
    tools: list[Any] = []


def full_tool(event: LifecycleEvent, url: str, **kw: Any) -> Tool:
    """A tool whose input takes every variable of `event`, all required."""
    props: dict[str, Any] = {}
    for name in EVENT_VARIABLES[event]:
        if name == "conversation_turns":
            props[name] = {"type": "array"}
        elif name in _JSON_TYPE:
            props[name] = {"type": "object"}
        else:
            props[name] = {"type": ["string", "null"]}
    schema = {"type": "object", "properties": props, "required": list(props)}
    return Tool(name=f"sync-{event.value}", url=url, input_schema=schema, **kw)


def full_action(event: LifecycleEvent, url: str, **kw: Any) -> Action:
    """An action that maps every variable of `event` to the input of that name."""
    mapping: dict[str, Any] = {name: name for name in EVENT_VARIABLES[event]}
    return Action(event=event.value, tool=full_tool(event, url, **kw), mapping=mapping)


def every_event_campaign(url: str, **kw: Any) -> CampaignStub:
    return CampaignStub(actions=[full_action(e, url, **kw) for e in LifecycleEvent])


def new_attempt(contact: str = "contact-1", **kw: Any) -> NewAttempt:
    values: dict[str, Any] = {
        "contact_id": contact,
        "campaign_id": "camp-1",
        "campaign_version": 1,
        "recipient_number": "+14155550123",
        "calling_number_id": "num-1",
        "calling_number": "+14155550000",
        "calling_number_provider": "simulated",
        "scheduled_for": T0,
        "dynamic_variables": {"customer_name": "Ahmed"},
        "metadata": {"crm_id": "crm-9"},
        **kw,
    }
    return NewAttempt(**values)


TEMPLATE = PostAnalysisTemplate(name="outcome", tags=["interested", "callback"])
