"""API keys, open routes and the OpenAPI document, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import OTHER_KEY, Api


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key-at-all-000000"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"X-API-Key": "test-key-0123456789abcdeX"},
        {"Authorization": "Bearer"},
    ],
)
async def test_api_routes_need_a_known_key(api: Api, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=api.server.url, headers=headers) as bare:
        for method, path in [
            ("GET", "/calls"),
            ("GET", "/campaigns"),
            ("POST", "/calls"),
            ("GET", "/calls/some-id"),
            ("POST", "/campaigns/x/cancel"),
        ]:
            response = await bare.request(method, path, json={})
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            assert body["status_code"] == 401
            assert "API key" in body["error"]


async def test_either_header_and_any_configured_key_is_accepted(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.server.url) as bare:
        by_header = await bare.get("/calls", headers={"X-API-Key": OTHER_KEY})
        by_bearer = await bare.get(
            "/calls", headers={"Authorization": f"bearer {OTHER_KEY}"}
        )
    assert by_header.status_code == 200
    assert by_bearer.status_code == 200
    assert by_header.json()["items"] == []


async def test_health_and_schema_are_open(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.server.url) as bare:
        health = await bare.get("/health")
        schema = await bare.get("/schema/openapi.json")
        docs = await bare.get("/docs")

    assert health.status_code == 200
    assert health.json()["database"] == "ok"
    assert health.json()["status"] == "ok"
    assert schema.status_code == 200
    assert docs.status_code in (301, 302, 307)


async def test_openapi_lists_the_routes_and_the_key_schemes(api: Api) -> None:
    document = (await api.client.get("/schema/openapi.json")).json()
    paths = document["paths"]

    expected = {
        "/campaigns": {"get", "post"},
        "/campaigns/{campaign_id}": {"get", "put"},
        "/campaigns/{campaign_id}/versions/{version}": {"get"},
        "/campaigns/{campaign_id}/cancel": {"post"},
        "/campaigns/{campaign_id}/calls/csv": {"post"},
        "/calls": {"get", "post"},
        "/calls/{call_id}": {"get"},
        "/calls/{call_id}/cancel": {"post"},
        "/health": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert {"bearer", "apiKey"} <= set(document["components"]["securitySchemes"])
    assert paths["/calls"]["post"]["security"]
    assert not paths["/health"]["get"].get("security")
    # The campaign and call bodies are documented, not opaque objects.
    schemas = document["components"]["schemas"]
    assert "campaign_id" in schemas["LaunchCall"]["properties"]
    assert "history" in schemas["CallView"]["properties"]
    campaign = (await api.client.get("/schema/campaign.json")).json()
    assert "caller_id" in campaign["$defs"]["Campaign"]["properties"]


async def test_unknown_route_is_a_json_404(api: Api) -> None:
    response = await api.client.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["status_code"] == 404
