"""Campaign create / read / versions / update / list over real HTTP."""

from __future__ import annotations

from tests.api.conftest import Api, campaign_body


async def test_create_then_read_returns_version_one(api: Api) -> None:
    created = await api.client.post("/campaigns", json=campaign_body())
    assert created.status_code == 201
    body = created.json()
    assert body["version"] == 1
    assert body["id"]
    # Empty providers are filled with the campaign's.
    assert body["caller_id"]["default"]["provider"] == "simulated"

    read = await api.client.get(f"/campaigns/{body['id']}")
    assert read.status_code == 200
    assert read.json() == body


async def test_update_stores_a_new_version_and_keeps_the_old(api: Api) -> None:
    campaign_id = (await api.client.post("/campaigns", json=campaign_body())).json()[
        "id"
    ]
    updated = await api.client.put(
        f"/campaigns/{campaign_id}", json=campaign_body(name="Renewals (Dec)")
    )
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert updated.json()["id"] == campaign_id

    latest = (await api.client.get(f"/campaigns/{campaign_id}")).json()
    first = (await api.client.get(f"/campaigns/{campaign_id}?version=1")).json()
    by_path = (await api.client.get(f"/campaigns/{campaign_id}/versions/1")).json()
    assert latest["name"] == "Renewals (Dec)"
    assert latest["version"] == 2
    assert first["name"] == "Renewals"
    assert first == by_path


async def test_update_with_a_stale_expected_version_is_a_conflict(api: Api) -> None:
    campaign_id = (await api.client.post("/campaigns", json=campaign_body())).json()[
        "id"
    ]
    ok = await api.client.put(
        f"/campaigns/{campaign_id}?expected_version=1", json=campaign_body()
    )
    stale = await api.client.put(
        f"/campaigns/{campaign_id}?expected_version=1", json=campaign_body()
    )
    assert ok.status_code == 200
    assert stale.status_code == 409
    assert "version 2" in stale.json()["error"]


async def test_invalid_campaign_is_422_naming_each_field(api: Api) -> None:
    bad = campaign_body(provider="carrier-pigeon")
    bad["caller_id"]["overrides"][0]["prefix"] = "968"
    response = await api.client.post("/campaigns", json=bad)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "provider" in errors
    assert "caller_id.overrides[0].prefix" in errors

    missing = campaign_body()
    del missing["agent_url"]
    response = await api.client.post("/campaigns", json=missing)
    assert response.status_code == 422
    assert "agent_url" in " ".join(response.json()["errors"].values())

    listed = (await api.client.get("/campaigns")).json()
    assert listed["items"] == []  # nothing was stored


async def test_unknown_campaign_and_version_are_404(api: Api) -> None:
    campaign_id = (await api.client.post("/campaigns", json=campaign_body())).json()[
        "id"
    ]
    assert (await api.client.get("/campaigns/nope")).status_code == 404
    assert (
        await api.client.get(f"/campaigns/{campaign_id}?version=7")
    ).status_code == 404
    put = await api.client.put("/campaigns/nope", json=campaign_body())
    assert put.status_code == 404
    assert put.json()["error"] == "no campaign 'nope'"


async def test_update_cannot_move_a_campaign_to_another_id(api: Api) -> None:
    campaign_id = (await api.client.post("/campaigns", json=campaign_body())).json()[
        "id"
    ]
    response = await api.client.put(
        f"/campaigns/{campaign_id}", json=campaign_body(id="someone-else")
    )
    assert response.status_code == 422
    assert "id" in response.json()["errors"]


async def test_list_is_paginated(api: Api) -> None:
    for index in range(5):
        await api.client.post("/campaigns", json=campaign_body(name=f"C{index}"))

    first = (await api.client.get("/campaigns?limit=2")).json()
    second = (await api.client.get("/campaigns?limit=2&offset=2")).json()
    last = (await api.client.get("/campaigns?limit=2&offset=4")).json()

    assert [c["name"] for c in first["items"]] == ["C0", "C1"]
    assert first["next_offset"] == 2
    assert [c["name"] for c in second["items"]] == ["C2", "C3"]
    assert [c["name"] for c in last["items"]] == ["C4"]
    assert last["next_offset"] is None
    assert (await api.client.get("/campaigns?limit=0")).status_code == 422
