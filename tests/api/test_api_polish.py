"""Fixes a new user asked for: bounded pages, clear body errors, zones shown."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import Api, campaign_body

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path", ["/calls", "/campaigns", "/webhooks/deliveries"], ids=str
)
async def test_an_offset_past_64_bits_is_422_not_500(api: Api, path: str) -> None:
    response = await api.client.get(path, params={"offset": HUGE})
    assert response.status_code == 422, response.text
    assert "offset" in response.json()["errors"]


async def test_the_largest_offset_still_answers_an_empty_page(api: Api) -> None:
    response = await api.client.get("/calls", params={"offset": str(2**63 - 1)})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@pytest.mark.parametrize("limit", ["0", "501", HUGE])
async def test_a_limit_out_of_range_is_422(api: Api, limit: str) -> None:
    response = await api.client.get("/campaigns", params={"limit": limit})
    assert response.status_code == 422, response.text
    assert "limit" in response.json()["errors"]


async def test_a_created_campaign_lists(api: Api) -> None:
    created = await api.client.post("/campaigns", json=campaign_body())
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("timezone", "zone"), [(None, "America/New_York"), ("Asia/Muscat", "Asia/Muscat")]
)
async def test_launch_answers_the_window_placed_time_and_its_zone(
    api: Api, timezone: str | None, zone: str
) -> None:
    window = {"start": "09:00", "end": "10:00"}
    created = await api.client.post(
        "/campaigns", json=campaign_body(calling_window=window)
    )
    assert created.status_code == 201, created.text
    launch = {
        "campaign_id": created.json()["id"],
        "number": "+12025550123",
        "variables": {"customer_name": "Ada"},
        "timezone": timezone,
    }
    answer = await api.client.post("/calls", json=launch)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["zone"] == zone
    placed = dt.datetime.fromisoformat(body["scheduled_for"])
    # Deferred to the opening, or now when the window is open: 09:xx there.
    assert placed.astimezone(ZoneInfo(zone)).hour == 9

    read = (await api.client.get(f"/calls/{body['id']}")).json()
    assert read["zone"] == zone
    assert dt.datetime.fromisoformat(read["scheduled_for"]) == placed
    listed = (await api.client.get("/calls")).json()["items"]
    assert [item["zone"] for item in listed] == [zone]
