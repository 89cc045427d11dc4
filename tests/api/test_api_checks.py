"""Checks that depend on this server: configured carriers, simulated behaviours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from mediaserver.corpus import default_corpus_dir
from mediaserver.store.db import create_schema, make_engine
from tests.api.conftest import Api, campaign_body, running_api

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example-campaign.toml"


@pytest_asyncio.fixture
async def checked(tmp_path: Path) -> AsyncIterator[Api]:
    """The API of a server with only the simulated carrier, recordings in rec/."""
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "hello.wav").write_bytes(b"RIFF")  # only its presence is checked
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}")
    await create_schema(engine)
    try:
        async with running_api(
            engine, configured_providers={"simulated"}, sim_recordings_dirs=[folder]
        ) as running:
            yield running
    finally:
        await engine.dispose()


def _simulated(**changes: Any) -> dict[str, Any]:
    metadata = [{"name": "crm_id", "type": "string"}]
    metadata.append({"name": "sim_behavior", "type": "string"})
    return campaign_body(**{"provider": "simulated", "metadata": metadata, **changes})


async def _launch(api: Api, behavior: str) -> Any:
    created = await api.client.post("/campaigns", json=_simulated())
    assert created.status_code == 201, created.text
    launch = {
        "campaign_id": created.json()["id"],
        "number": "+12025550123",
        "variables": {"customer_name": "Ada"},
        "metadata": {"sim_behavior": behavior},
    }
    return await api.client.post("/calls", json=launch)


async def test_a_bad_behaviour_is_refused_at_launch(checked: Api) -> None:
    response = await _launch(checked, "ansewr")
    assert response.status_code == 422, response.text
    reason = response.json()["errors"]["metadata.sim_behavior"]
    assert "unknown behaviour 'ansewr'" in reason
    assert (await checked.client.get("/calls")).json()["items"] == []


async def test_a_recording_outside_the_folders_is_refused(checked: Api) -> None:
    response = await _launch(checked, "answer:missing.wav")
    assert response.status_code == 422, response.text
    assert "missing.wav" in response.json()["errors"]["metadata.sim_behavior"]


async def test_good_behaviours_are_queued(checked: Api) -> None:
    for behavior in ("answer:hello.wav;hold=1", "busy;ring=0.5"):
        response = await _launch(checked, behavior)
        assert response.status_code == 201, response.text


async def test_a_csv_row_with_a_bad_behaviour_is_rejected_alone(checked: Api) -> None:
    created = await checked.client.post("/campaigns", json=_simulated())
    campaign_id = created.json()["id"]
    body = (
        "phone,customer_name,sim_behavior\n"
        "+12025550101,Ada,busy\n"
        "+12025550102,Bob,answer:../../etc/passwd\n"
        "+12025550103,Cy,\n"
    )
    response = await checked.client.post(
        f"/campaigns/{campaign_id}/calls/csv",
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == 2
    [rejected] = report["rejected"]
    assert rejected["row"] == 3
    assert "'..'" in rejected["errors"]["metadata.sim_behavior"]
    calls = (await checked.client.get("/calls")).json()["items"]
    assert sorted(c["recipient_number"] for c in calls) == [
        "+12025550101",
        "+12025550103",
    ]


async def test_behaviours_are_not_checked_for_other_carriers(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}")
    await create_schema(engine)
    try:
        async with running_api(engine, sim_recordings_dirs=[tmp_path]) as api:
            created = await api.client.post(
                "/campaigns", json=_simulated(provider="twilio")
            )
            assert created.status_code == 201, created.text
            launch = {
                "campaign_id": created.json()["id"],
                "number": "+12025550123",
                "variables": {"customer_name": "Ada"},
                "metadata": {"sim_behavior": "nonsense"},
            }
            response = await api.client.post("/calls", json=launch)
            assert response.status_code == 201, response.text
    finally:
        await engine.dispose()


async def test_a_carrier_without_credentials_is_refused_at_save(checked: Api) -> None:
    response = await checked.client.post(
        "/campaigns", json=campaign_body(provider="twilio")
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"]["provider"] == (
        "twilio is not configured on this server: "
        "set carriers.twilio.account_sid and auth_token"
    )
    created = await checked.client.post("/campaigns", json=_simulated())
    campaign_id = created.json()["id"]
    number = {"id": "tx", "number": "+12025550199", "provider": "telnyx"}
    caller_id = {"default": number}
    updated = await checked.client.put(
        f"/campaigns/{campaign_id}", json=_simulated(caller_id=caller_id)
    )
    assert updated.status_code == 422, updated.text
    assert (
        "telnyx is not configured"
        in (updated.json()["errors"]["caller_id.default.provider"])
    )


async def test_the_example_campaign_launches_its_documented_behaviour(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'example.sqlite3'}")
    await create_schema(engine)
    options = {
        "configured_providers": {"simulated"},
        "sim_recordings_dirs": [default_corpus_dir()],
    }
    try:
        async with running_api(engine, **options) as api:
            created = await api.client.post(
                "/campaigns",
                content=EXAMPLE.read_bytes(),
                headers={"Content-Type": "application/toml"},
            )
            assert created.status_code == 201, created.text
            launch = {
                "campaign_id": "renewals-2026",
                "number": "+12025550123",
                "variables": {"customer_name": "Ada", "renewal_date": "2027-01-31"},
                "metadata": {
                    "crm_id": "c-1",
                    "sim_behavior": "answer:human/asterisk_en_hello_padded.wav",
                },
            }
            response = await api.client.post("/calls", json=launch)
            assert response.status_code == 201, response.text
    finally:
        await engine.dispose()
