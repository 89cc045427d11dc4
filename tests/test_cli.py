"""The `callwright` command as a user runs it, in a real subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from mediaserver import tokens

SECRET = "cli-test-secret-0123456789"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWRIGHT_")}
    env.update(extra)
    return env


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediaserver.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_without_api_key_names_the_setting() -> None:
    code, _, err = await _run("serve", env=_env())
    assert code == 2
    assert "api.keys" in err
    assert "CALLWRIGHT_API_KEYS" in err


async def test_bad_log_level_is_a_usage_error_not_a_traceback() -> None:
    code, _, err = await _run("serve", "--log-level", "bogus", env=_env())
    assert code == 2
    assert "invalid choice" in err
    assert "Traceback" not in err


async def test_config_masks_secrets() -> None:
    env = _env(CALLWRIGHT_MEDIA_SECRET=SECRET, CALLWRIGHT_API_KEYS="k" * 20)
    code, out, _ = await _run("config", env=env)
    assert code == 0
    assert "[media]" in out
    assert SECRET not in out
    assert "k" * 20 not in out


async def test_agent_needs_the_media_secret() -> None:
    code, _, err = await _run("agent", env=_env())
    assert code == 2
    assert "CALLWRIGHT_MEDIA_SECRET" in err


async def test_agent_serves_and_refuses_a_bad_token() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediaserver.cli",
        "agent",
        "--port",
        "0",
        env=_env(CALLWRIGHT_MEDIA_SECRET=SECRET),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        url = line.rsplit("= ", 1)[1].strip()
        assert url.startswith("ws://127.0.0.1:")

        forged = tokens.issue(b"another secret", "call-1", purpose="agent")
        headers = {"Authorization": f"Bearer {forged}"}
        with pytest.raises(ConnectionClosedError) as refused:
            async with connect(url, additional_headers=headers) as ws:
                await ws.recv()
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == 1008
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
