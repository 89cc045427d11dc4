"""The one-process service: `callwright serve` and the Service object."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mediaserver.config import load_settings
from mediaserver.service_main import Service
from tests.api.conftest import API_KEY, campaign_body

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "CALLWRIGHT_API_KEYS": API_KEY,
        "CALLWRIGHT_SERVER_PORT": "0",
        "CALLWRIGHT_MEDIA_PORT": "0",
        "CALLWRIGHT_MEDIA_SECRET": "service-test-secret",
        "CALLWRIGHT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'svc.sqlite3'}",
    }


async def _read_until(
    stream: asyncio.StreamReader, pattern: str, within_s: float
) -> str:
    """Lines of `stream` until one matches; returns the match's first group."""
    deadline = time.monotonic() + within_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(stream.readline(), deadline - time.monotonic())
        if not line:
            break
        text = line.decode(errors="replace")
        seen.append(text)
        found = re.search(pattern, text)
        if found:
            return found.group(1) if found.groups() else text
    raise AssertionError(f"never saw {pattern!r}; output was:\n{''.join(seen)}")


async def test_serve_answers_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, **_env(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediaserver.cli",
        "serve",
        "--config",
        str(REPO / "config" / "callwright.toml"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        url = await _read_until(process.stdout, r"HTTP API listening on (\S+)", 60)
        async with httpx.AsyncClient(base_url=url) as client:
            health = await client.get("/health")
            denied = await client.get("/calls")
            listed = await client.get("/calls", headers={"X-API-Key": API_KEY})
        assert health.json()["media"] == "listening"
        assert denied.status_code == 401
        assert listed.status_code == 200

        process.send_signal(signal.SIGTERM)
        await _read_until(process.stdout, r"(service stopped)", 30)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_refuses_to_start_without_api_keys(tmp_path: Path) -> None:
    env = {**os.environ, **_env(tmp_path), "CALLWRIGHT_API_KEYS": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediaserver.cli",
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"api.keys" in output
    assert b"CALLWRIGHT_API_KEYS" in output


async def _calls(client: httpx.AsyncClient, campaign_id: str) -> list[dict[str, Any]]:
    page = await client.get("/calls", params={"campaign_id": campaign_id, "limit": 500})
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def test_service_dials_retries_and_keeps_the_caller_number(
    tmp_path: Path,
) -> None:
    settings = load_settings(None, env=_env(tmp_path))
    service = Service(settings, speed=20.0, dispatch_poll_s=0.1)
    await service.start()
    try:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(
            base_url=service.api_url, headers=headers
        ) as client:
            body = campaign_body(
                metadata=[{"name": "sim_behavior", "type": "string"}],
                retry={"on_busy": True, "max_retries": 2, "delay_s": 0},
                calling_window={"start": "00:00", "end": "24:00"},
            )
            campaign_id = (await client.post("/campaigns", json=body)).json()["id"]
            for number, behaviour in [
                ("+96891234567", "busy;ring=0.1"),
                ("+12025550123", "answer;ring=0.1;hold=0.2"),
                ("+12025550124", "dial_error"),
            ]:
                launched = await client.post(
                    "/calls",
                    json={
                        "campaign_id": campaign_id,
                        "number": number,
                        "variables": {"customer_name": "Test"},
                        "metadata": {"sim_behavior": behaviour},
                    },
                )
                assert launched.status_code == 201

            terminal = {"completed", "busy", "initiation_failed", "failed"}
            for _ in range(200):
                calls = await _calls(client, campaign_id)
                if len(calls) == 5 and all(c["status"] in terminal for c in calls):
                    break
                await asyncio.sleep(0.1)
            by_number: dict[str, list[dict[str, Any]]] = {}
            for call in calls:
                by_number.setdefault(call["recipient_number"], []).append(call)

            busy = sorted(by_number["+96891234567"], key=lambda c: c["attempt_number"])
            assert [c["status"] for c in busy] == ["busy", "busy", "busy"]
            assert {c["calling_number"] for c in busy} == {"+96822000100"}
            assert len({c["contact_id"] for c in busy}) == 1
            assert [c["status"] for c in by_number["+12025550123"]] == ["completed"]
            failed = by_number["+12025550124"][0]
            assert failed["status"] == "initiation_failed"
            assert "refused" in failed["initiation_error"]

            history = (await client.get(f"/calls/{busy[0]['id']}")).json()["history"]
            assert [h["status"] for h in history][:2] == ["queued", "dispatching"]
            assert history[-1]["status"] == "busy"
    finally:
        await service.stop()


async def test_carrier_callbacks_are_mounted_and_signed_not_keyed(
    tmp_path: Path,
) -> None:
    from twilio.request_validator import RequestValidator

    from mediaserver.api.callbacks_twilio import STATUS_PATH

    env = {**_env(tmp_path), "CALLWRIGHT_CARRIERS_TWILIO_AUTH_TOKEN": "tw-auth-token"}
    service = Service(load_settings(None, env=env), dispatch_poll_s=0.1)
    await service.start()
    try:
        params = {
            "AccountSid": "AC" + "1" * 32,
            "CallSid": "CA" + "2" * 32,
            "CallStatus": "ringing",
            "SequenceNumber": "1",
        }
        url = service.api_url + STATUS_PATH
        signature = RequestValidator("tw-auth-token").compute_signature(url, params)
        async with httpx.AsyncClient(base_url=service.api_url) as client:
            unsigned = await client.post(STATUS_PATH, data=params)
            signed = await client.post(
                STATUS_PATH, data=params, headers={"X-Twilio-Signature": signature}
            )
            telnyx = await client.post("/callbacks/telnyx/webhook", content=b"{}")
        assert unsigned.status_code == 403  # refused by signature, not by API key
        assert signed.status_code == 204
        assert telnyx.status_code == 404  # not configured, not mounted
    finally:
        await service.stop()


async def test_service_mounts_the_actions_routes_behind_the_key(tmp_path: Path) -> None:
    service = Service(load_settings(None, env=_env(tmp_path)), dispatch_poll_s=0.1)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=service.api_url) as client:
            document = (await client.get("/schema/openapi.json")).json()
            bare = await client.get("/events/some-call")
            keyed = await client.get(
                "/events/some-call", headers={"X-API-Key": API_KEY}
            )
        assert any(path.startswith("/webhooks/") for path in document["paths"])
        assert bare.status_code == 401
        assert keyed.status_code in (200, 404)
    finally:
        await service.stop()


async def test_service_checks_carriers_and_behaviours_at_launch(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "hi.wav").write_bytes(b"RIFF")
    env = {**_env(tmp_path), "CALLWRIGHT_SIMULATED_RECORDINGS_DIRS": str(folder)}
    service = Service(load_settings(None, env=env), dispatch_poll_s=0.1)
    await service.start()
    headers = {"X-API-Key": API_KEY}
    metadata = [{"name": "sim_behavior", "type": "string"}]
    try:
        async with httpx.AsyncClient(
            base_url=service.api_url, headers=headers
        ) as client:
            twilio = await client.post(
                "/campaigns", json=campaign_body(provider="twilio")
            )
            created = await client.post(
                "/campaigns",
                json=campaign_body(provider="simulated", metadata=metadata),
            )
            assert created.status_code == 201, created.text
            launches = {}
            for behavior in ("answer:hi.wav", "answer:elsewhere.wav"):
                launch = {
                    "campaign_id": created.json()["id"],
                    "number": "+12025550123",
                    "variables": {"customer_name": "Ada"},
                    "metadata": {"sim_behavior": behavior},
                }
                launches[behavior] = await client.post("/calls", json=launch)
        assert twilio.status_code == 422
        assert "twilio is not configured" in twilio.json()["errors"]["provider"]
        assert launches["answer:hi.wav"].status_code == 201
        refused = launches["answer:elsewhere.wav"]
        assert refused.status_code == 422
        assert "elsewhere.wav" in refused.json()["errors"]["metadata.sim_behavior"]
    finally:
        await service.stop()
