"""SIGKILL a controller node mid-campaign, restart it: nothing lost, nobody twice.

The node is a real process (tests/controller/queue_node.py) on a SQLite
file; the simulated carrier appends every dial to a fsynced log, which is
the ground truth of who was called.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from mediaserver.carriers.simulated import read_log
from mediaserver.controller.campaign import Campaign, RetryPolicy
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import TERMINAL, CallStatus
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import Attempt, QueueStore
from tests.controller.queue_support import RecordingDialer, campaign, launch

REPO = Path(__file__).resolve().parents[2]
CONTACTS = 36
BEHAVIOURS = ["busy;ring=0.05", "answer;ring=0.05;hold=0.6", "no_answer;ring=0"]
CRASH_CAMPAIGN = campaign(
    max_concurrent_calls=4,
    calls_per_second=20.0,
    ring_timeout_s=1,
    retry=RetryPolicy(on_busy=True, on_no_answer=True, max_retries=1, delay_s=0),
)


async def seed(
    url: str, schema: str | None = None, camp: Campaign = CRASH_CAMPAIGN
) -> None:
    engine = make_engine(url, schema=schema)
    await create_schema(engine, schema=schema)
    controller = Controller(
        QueueStore(engine),
        StaticCampaigns([camp]),
        {"simulated": RecordingDialer()},
        media_urls={},
        token_secret=b"x" * 32,
    )
    await controller.enqueue(
        [
            launch(f"+1212555{i:04d}", metadata={"sim_behavior": BEHAVIOURS[i % 3]})
            for i in range(CONTACTS)
        ]
    )
    await engine.dispose()


async def attempts(
    url: str, schema: str | None = None
) -> tuple[list[Attempt], dict[str, list[str]]]:
    engine = make_engine(url, schema=schema)
    store = QueueStore(engine)
    rows = await store.all_attempts()
    details = {a.id: [h.detail for h in await store.history(a.id)] for a in rows}
    await engine.dispose()
    return rows, details


def start_node(
    url: str,
    tmp: Path,
    node: str,
    schema: str | None = None,
    camp: Campaign = CRASH_CAMPAIGN,
) -> subprocess.Popen[bytes]:
    (tmp / "campaign.json").write_bytes(msgspec.json.encode(camp))
    command = [
        sys.executable,
        "-m",
        "tests.controller.queue_node",
        "--db",
        url,
        "--campaign",
        str(tmp / "campaign.json"),
        "--log",
        str(tmp / "sim.log"),
        "--node",
        node,
        "--speed",
        "2",
    ]
    if schema:
        command += ["--schema", schema]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )


def dials(tmp: Path) -> int:
    log = tmp / "sim.log"
    return sum(r["op"] == "dial" for r in read_log(log)) if log.exists() else 0


def kill_after_dials(node: subprocess.Popen[bytes], tmp: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while dials(tmp) < count and node.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    node.send_signal(signal.SIGKILL)
    node.wait(timeout=10)


def check_outcome(
    rows: list[Attempt], details: dict[str, list[str]], tmp: Path
) -> None:
    dialled = collections.Counter(
        r["call_id"] for r in read_log(tmp / "sim.log") if r["op"] == "dial"
    )
    ids = {a.id for a in rows}

    # Nobody was dialled twice for one attempt, and every dial is a stored attempt.
    assert dialled, "no call was dialled"
    assert max(dialled.values()) == 1, [k for k, v in dialled.items() if v > 1]
    assert set(dialled) <= ids

    # Nothing was lost: every contact is there and every attempt is finished.
    contacts = collections.defaultdict(list)
    for attempt in rows:
        contacts[attempt.contact_id].append(attempt)
    assert len(contacts) == CONTACTS
    assert all(a.status in TERMINAL for a in rows), collections.Counter(
        a.status for a in rows
    )
    assert all(len(group) <= 2 for group in contacts.values())

    # A carrier ending is only ever recorded for a call that was really dialled.
    carrier_endings = {CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.COMPLETED}
    assert all(a.id in dialled for a in rows if a.status in carrier_endings)


def test_sigkill_mid_campaign_loses_nothing_and_dials_nobody_twice(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    asyncio.run(seed(url))

    kill_after_dials(start_node(url, tmp_path, "node-1"), tmp_path, 8)
    kill_after_dials(start_node(url, tmp_path, "node-1"), tmp_path, 20)
    final = start_node(url, tmp_path, "node-1")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()[-2000:]

    rows, details = asyncio.run(attempts(url))
    check_outcome(rows, details, tmp_path)
    recovered = [
        a for a in rows if any(d.startswith("recovered") for d in details[a.id])
    ]
    assert recovered, "the kills should have caught calls in flight"
