"""CSV uploads: raw and multipart bodies, per-row rejections, header errors."""

from __future__ import annotations

from tests.api.conftest import Api, campaign_body

GOOD_AND_BAD = (
    "Phone Number,customer_name,balance,crm_id,notes\n"
    "+12025550101,Ahmed,10,crm-1,first\n"
    "+12025550102,,5,crm-2,missing name\n"  # row 3: required variable
    "12345,Sara,7,crm-3,bad number\n"  # row 4
    "+12025550101,Ahmed again,1,crm-4,duplicate\n"  # row 5
    "\n"  # row 6: blank
    "+96891234567,Laila,not-a-number,crm-6,bad balance\n"  # row 7
    "+96891234568,Omar,3.5,crm-7,oman\n"
)


async def _campaign(api: Api) -> str:
    response = await api.client.post("/campaigns", json=campaign_body())
    campaign_id: str = response.json()["id"]
    return campaign_id


async def test_raw_csv_reports_each_bad_row_and_queues_the_good(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await api.client.post(
        f"/campaigns/{campaign_id}/calls/csv",
        content=GOOD_AND_BAD.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()

    assert report["accepted"] == 2
    assert report["blank_rows"] == 1
    assert report["ignored_columns"] == ["notes"]
    rejected = {r["row"]: r for r in report["rejected"]}
    assert set(rejected) == {3, 4, 5, 7}
    assert "variables.customer_name" in rejected[3]["errors"]
    assert "number" in rejected[4]["errors"]
    assert "duplicate of row 2" in rejected[5]["reason"]
    assert "variables.balance" in rejected[7]["errors"]

    calls = (await api.client.get(f"/calls?campaign_id={campaign_id}")).json()["items"]
    by_number = {c["recipient_number"]: c for c in calls}
    assert set(by_number) == {"+12025550101", "+96891234568"}
    assert by_number["+96891234568"]["calling_number"] == "+96822000100"
    assert by_number["+96891234568"]["dynamic_variables"]["balance"] == 3.5
    assert by_number["+12025550101"]["metadata"] == {"crm_id": "crm-1"}
    assert api.enqueued == 1


async def test_multipart_upload_gives_the_same_report(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await api.client.post(
        f"/campaigns/{campaign_id}/calls/csv",
        files={"file": ("contacts.csv", GOOD_AND_BAD.encode(), "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert [r["row"] for r in response.json()["rejected"]] == [3, 4, 5, 7]


async def test_a_large_file_streams_through(api: Api) -> None:
    campaign_id = await _campaign(api)
    rows = ["phone,customer_name"] + [
        f"+1202{5550000 + i:07d},Name {i}" for i in range(3000)
    ]
    rows[1500] = "+1202,Broken"  # row 1501 in the file
    response = await api.client.post(
        f"/campaigns/{campaign_id}/calls/csv",
        content=("\n".join(rows) + "\n").encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200
    report = response.json()
    assert report["accepted"] == 2999
    assert [r["row"] for r in report["rejected"]] == [1501]
    page = (await api.client.get(f"/calls?campaign_id={campaign_id}&limit=1")).json()
    assert page["next_offset"] == 1


async def test_unusable_header_is_422_and_queues_nothing(api: Api) -> None:
    campaign_id = await _campaign(api)
    response = await api.client.post(
        f"/campaigns/{campaign_id}/calls/csv",
        content=b"name,var:unknown_thing\nAhmed,x\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "header" in errors
    assert any("unknown_thing" in why for why in errors.values())
    assert (await api.client.get("/calls")).json()["items"] == []


async def test_wrong_content_type_and_unknown_campaign(api: Api) -> None:
    campaign_id = await _campaign(api)
    as_json = await api.client.post(
        f"/campaigns/{campaign_id}/calls/csv", json={"phone": "+12025550101"}
    )
    assert as_json.status_code == 415
    no_file = await api.client.post(
        f"/campaigns/{campaign_id}/calls/csv",
        files={"upload": ("c.csv", b"phone\n+12025550101\n", "text/csv")},
    )
    assert no_file.status_code == 400
    assert "file" in no_file.json()["error"]
    unknown = await api.client.post(
        "/campaigns/nope/calls/csv",
        content=b"phone\n+12025550101\n",
        headers={"Content-Type": "text/csv"},
    )
    assert unknown.status_code == 404
