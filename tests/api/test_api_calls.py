"""Launching, listing, reading and canceling calls over real HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.api.conftest import Api, campaign_body


async def _campaign(api: Api, **changes: Any) -> str:
    response = await api.client.post("/campaigns", json=campaign_body(**changes))
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["id"]
    return campaign_id


async def _launch(api: Api, campaign_id: str, **changes: Any) -> Any:
    body: dict[str, Any] = {
        "campaign_id": campaign_id,
        "number": "+12025550123",
        "variables": {"customer_name": "Ahmed", "balance": "12.5"},
        "metadata": {"crm_id": "crm-7"},
    }
    body.update(changes)
    return await api.client.post("/calls", json=body)


async def test_launch_queues_a_call_with_routed_caller_id(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await _launch(api, campaign_id, number="+96891234567")
    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "queued"
    assert api.enqueued == 1

    call = (await api.client.get(f"/calls/{created['id']}")).json()
    assert call["campaign_id"] == campaign_id
    assert call["campaign_version"] == 1
    assert call["recipient_number"] == "+96891234567"
    assert call["calling_number"] == "+96822000100"  # the +968 override
    assert call["calling_number_id"] == "num-om"
    assert call["dynamic_variables"] == {"customer_name": "Ahmed", "balance": 12.5}
    assert call["metadata"] == {"crm_id": "crm-7"}
    assert call["contact_id"] == created["contact_id"]
    assert [h["status"] for h in call["history"]] == ["queued"]


async def test_missing_required_variable_is_422_naming_it(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await _launch(api, campaign_id, variables={"balance": 3})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["variables.customer_name"]
    assert (await api.client.get("/calls")).json()["items"] == []
    assert api.enqueued == 0


async def test_bad_fields_are_all_named(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await _launch(
        api,
        campaign_id,
        number="not a number",
        variables={"customer_name": "A", "surprise": 1},
        timezone="Mars/Olympus",
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"number", "variables.surprise", "timezone"} <= set(errors)


async def test_wrong_body_shape_is_422_naming_the_field(api: Api) -> None:
    campaign_id = await _campaign(api)
    wrong_type = await _launch(api, campaign_id, variables="customer_name=A")
    unknown = await _launch(api, campaign_id, numbr="+12025550123")
    assert wrong_type.status_code == 422
    assert "variables" in wrong_type.json()["errors"]
    assert unknown.status_code == 422
    assert "numbr" in unknown.json()["errors"]


async def test_launch_under_unknown_campaign_is_404(api: Api) -> None:
    response = await _launch(api, "no-such-campaign")
    assert response.status_code == 404


async def test_scheduled_for_and_timezone_are_kept(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await _launch(
        api,
        campaign_id,
        scheduled_for="2031-03-04T10:30:00",
        timezone="Asia/Muscat",
    )
    assert response.status_code == 201, response.text
    call = (await api.client.get(f"/calls/{response.json()['id']}")).json()
    # A time without offset is read in the contact's zone (UTC+4).
    when = dt.datetime.fromisoformat(call["scheduled_for"])
    assert when == dt.datetime(2031, 3, 4, 6, 30, tzinfo=dt.UTC)
    assert call["timezone"] == "Asia/Muscat"


async def test_list_filters_by_campaign_and_status_and_pages(api: Api) -> None:
    first = await _campaign(api)
    second = await _campaign(api, name="Other")
    ids = [
        (await _launch(api, first, number=f"+1202555010{i}")).json()["id"]
        for i in range(3)
    ]
    other = (await _launch(api, second)).json()["id"]
    await api.client.post(f"/calls/{ids[0]}/cancel")

    of_first = (await api.client.get(f"/calls?campaign_id={first}")).json()
    assert {c["id"] for c in of_first["items"]} == set(ids)
    queued = (await api.client.get(f"/calls?campaign_id={first}&status=queued")).json()
    assert {c["id"] for c in queued["items"]} == set(ids[1:])
    canceled = (await api.client.get("/calls?status=canceled")).json()
    assert [c["id"] for c in canceled["items"]] == [ids[0]]
    assert other not in {c["id"] for c in of_first["items"]}

    page = (await api.client.get("/calls?limit=3")).json()
    rest = (await api.client.get("/calls?limit=3&offset=3")).json()
    assert len(page["items"]) == 3
    assert page["next_offset"] == 3
    assert len(rest["items"]) == 1
    assert rest["next_offset"] is None
    assert {c["id"] for c in page["items"] + rest["items"]} == {*ids, other}

    bad = await api.client.get("/calls?status=sleeping")
    assert bad.status_code == 422
    assert "status" in bad.json()["errors"]


async def test_cancel_a_call_records_history_and_only_once(api: Api) -> None:
    campaign_id = await _campaign(api)
    call_id = (await _launch(api, campaign_id)).json()["id"]

    response = await api.client.post(f"/calls/{call_id}/cancel")
    assert response.status_code == 200
    assert response.json() == {"canceled": 1, "ids": [call_id]}
    call = (await api.client.get(f"/calls/{call_id}")).json()
    assert call["status"] == "canceled"
    assert call["completed_at"] is not None
    assert [h["status"] for h in call["history"]] == ["queued", "canceled"]
    assert call["history"][1]["old_status"] == "queued"

    again = await api.client.post(f"/calls/{call_id}/cancel")
    assert again.status_code == 422
    assert "status" in again.json()["errors"]
    assert (await api.client.post("/calls/nope/cancel")).status_code == 404
    assert (await api.client.get("/calls/nope")).status_code == 404


async def test_cancel_campaign_cancels_only_its_queued_calls(api: Api) -> None:
    target = await _campaign(api)
    spared = await _campaign(api, name="Spared")
    ids = [
        (await _launch(api, target, number=f"+1202555011{i}")).json()["id"]
        for i in range(3)
    ]
    kept = (await _launch(api, spared)).json()["id"]

    response = await api.client.post(f"/campaigns/{target}/cancel")
    assert response.status_code == 200
    assert response.json()["canceled"] == 3
    assert set(response.json()["ids"]) == set(ids)
    for call_id in ids:
        assert (await api.client.get(f"/calls/{call_id}")).json()[
            "status"
        ] == "canceled"
    assert (await api.client.get(f"/calls/{kept}")).json()["status"] == "queued"

    again = await api.client.post(f"/campaigns/{target}/cancel")
    assert again.json()["canceled"] == 0
    assert (await api.client.post("/campaigns/nope/cancel")).status_code == 404
