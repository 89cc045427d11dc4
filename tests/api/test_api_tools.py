"""Custom tools named by actions, over real HTTP; the typed campaign's OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Litestar, post
from litestar.params import Body

from mediaserver.controller.campaign import Campaign, actions_view, parse_campaign
from tests.api.conftest import Api, campaign_body


def _crm_tool(**changes: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "name": "crm_update",
        "method": "POST",
        "url": "http://127.0.0.1:9/crm",
        "headers": {"X-Team": "renewals"},
        "timeout_s": 5,
        "input_schema": {
            "type": "object",
            "properties": {
                "call_id": {"type": "string"},
                "phone": {"type": "string"},
                "transcript": {"type": "string"},
                "source": {"type": "string"},
            },
            "required": ["call_id"],
        },
    }
    tool.update(changes)
    return tool


def _action(event: str = "call_ended", **mapping: Any) -> dict[str, Any]:
    return {"event": event, "tool": "crm_update", "mapping": mapping}


async def test_an_action_naming_a_tool_is_accepted_and_resolved(api: Api) -> None:
    action = _action(
        call_id="call_queue_id",
        phone="call_queue_recipient_number",
        transcript="conversation_turns_simplified",
        source={"const": "callwright"},
    )
    body = campaign_body(tools=[_crm_tool()], actions=[action])
    created = await api.client.post("/campaigns", json=body)
    assert created.status_code == 201, created.text
    stored = created.json()
    assert stored["actions"][0]["tool"] == "crm_update"
    assert stored["tools"][0]["name"] == "crm_update"

    # What the outbox sees: the named tool's definition in place of its name.
    read = await api.client.get(f"/campaigns/{stored['id']}")
    view = actions_view(parse_campaign(read.json()))
    tool = view.actions[0].tool
    assert (tool.name, tool.url, tool.timeout_s) == (
        "crm_update",
        _crm_tool()["url"],
        5,
    )
    assert tool.headers == {"X-Team": "renewals"}


async def test_a_mapping_naming_a_variable_the_event_lacks_is_refused(
    api: Api,
) -> None:
    # call_initiated carries no transcript: only call_ended does.
    action = _action(
        "call_initiated",
        call_id="call_queue_id",
        transcript="conversation_turns_simplified",
    )
    body = campaign_body(tools=[_crm_tool()], actions=[action])
    response = await api.client.post("/campaigns", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["actions[0].mapping.transcript"]
    assert "conversation_turns_simplified" in errors["actions[0].mapping.transcript"]
    assert (await api.client.get("/campaigns")).json()["items"] == []


async def test_a_required_input_left_unfilled_is_refused(api: Api) -> None:
    action = _action(phone="call_queue_recipient_number")
    body = campaign_body(tools=[_crm_tool()], actions=[action])
    response = await api.client.post("/campaigns", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["actions[0].mapping.call_id"]
    assert "not mapped" in errors["actions[0].mapping.call_id"]


async def test_unknown_and_duplicate_tools_are_named(api: Api) -> None:
    action = {"event": "call_ended", "tool": "nope", "mapping": {}}
    body = campaign_body(
        tools=[_crm_tool(), _crm_tool(url="ftp://x")], actions=[action]
    )
    response = await api.client.post("/campaigns", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "no custom tool named 'nope'" in errors["actions[0].tool"]
    assert "already named" in errors["tools[1].name"]
    assert "tools[1].url" in errors


async def test_an_inline_tool_is_still_accepted(api: Api) -> None:
    action = {"event": "call_answered", "tool": _crm_tool(), "mapping": {}}
    action["mapping"] = {"call_id": "call_queue_id"}
    response = await api.client.post("/campaigns", json=campaign_body(actions=[action]))
    assert response.status_code == 201, response.text


def test_litestar_can_describe_a_typed_campaign_body() -> None:
    # A Struct default (not a factory) holding a list broke schema generation.
    @post("/typed")
    async def typed(data: Annotated[Campaign, Body()]) -> None:
        return None

    schema = Litestar([typed]).openapi_schema.to_schema()
    properties = schema["components"]["schemas"]["Campaign"]["properties"]
    assert "calling_window" in properties
    assert "tools" in properties


async def test_the_served_openapi_describes_campaign_responses(api: Api) -> None:
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    created = document["paths"]["/campaigns"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/Campaign")
    assert "tools" in document["components"]["schemas"]["Campaign"]["properties"]
