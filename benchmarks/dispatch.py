"""Call dispatches per second through the real queue, with a no-op dialer.

A dispatch is everything the controller does to start a call: claim the
attempt, commit the dial intent, call the dialer, and record the attempt
as initiated (each with its status history). The dialer itself does
nothing, so this measures the queue and the dispatcher alone.

    .venv/bin/python -m benchmarks.dispatch [--calls 2000] [--pg URL]

SQLite always runs (a fresh file in a temporary folder); PostgreSQL runs
when `--pg` or CALLWRIGHT_PG_URL names a server, in a throwaway schema.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mediaserver.controller.campaign import (
    CallerIdPolicy,
    CallingNumber,
    CallingWindow,
    Campaign,
)
from mediaserver.controller.dialer import DialRequest, DialResult
from mediaserver.controller.launch import LaunchRequest
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.store.db import create_schema, drop_schema, make_engine
from mediaserver.store.queue import QueueStore

TARGET_SQLITE = 200.0


class InitiatedCounter:
    """LifecycleHooks that fire an event once `target` calls are initiated."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = asyncio.Event()

    async def on_transition(
        self,
        conn: AsyncConnection,
        attempt: Mapping[str, Any],
        old_status: str | None,
        new_status: str,
    ) -> None:
        if new_status == "initiated":
            self.count += 1
            if self.count >= self.target:
                self.done.set()


class NoopDialer:
    name = "simulated"

    async def dial(self, request: DialRequest) -> DialResult:
        return DialResult(provider_call_id="N-" + request.call_id)

    async def hangup(self, provider_call_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


def bench_campaign() -> Campaign:
    return Campaign(
        id="bench",
        name="dispatch benchmark",
        version=1,
        agent_url="ws://127.0.0.1:1/agent",
        caller_id=CallerIdPolicy(
            default=CallingNumber(id="cn", number="+12125550100", provider="simulated")
        ),
        calling_window=CallingWindow(start="00:00", end="24:00"),  # any hour
        max_concurrent_calls=1_000_000,
        calls_per_second=1_000_000.0,
    )


async def measure(url: str, calls: int, schema: str | None = None) -> float:
    engine = make_engine(url, schema=schema)
    await create_schema(engine, schema=schema)
    counter = InitiatedCounter(calls)
    controller = Controller(
        QueueStore(engine, hooks=counter),
        StaticCampaigns([bench_campaign()]),
        {"simulated": NoopDialer()},
        media_urls={},
        token_secret=b"b" * 32,
        poll_s=0.01,
    )
    await controller.enqueue(
        [
            LaunchRequest(campaign_id="bench", number=f"+1212555{i % 10000:04d}")
            for i in range(calls)
        ]
    )

    started = time.perf_counter()
    await controller.start()
    await counter.done.wait()
    elapsed = time.perf_counter() - started
    await controller.stop()
    await engine.dispose()
    return calls / elapsed


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        rate = await measure(f"sqlite:///{Path(folder) / 'bench.sqlite3'}", args.calls)
    verdict = "meets" if rate >= TARGET_SQLITE else "MISSES"
    target = f"target >= {TARGET_SQLITE:.0f}: {verdict}"
    print(f"sqlite     {rate:8.1f} dispatches/s  ({target})")

    pg = args.pg or os.environ.get("CALLWRIGHT_PG_URL")
    if not pg:
        print("postgresql skipped (no --pg and no CALLWRIGHT_PG_URL)")
        return
    schema = "cw_bench_" + uuid.uuid4().hex[:10]
    try:
        rate = await measure(pg, args.calls, schema)
    finally:
        engine = make_engine(pg)
        await drop_schema(engine, schema)
        await engine.dispose()
    print(f"postgresql {rate:8.1f} dispatches/s  (no target; several nodes add up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL")
    args = parser.parse_args()
    print(
        f"{args.calls} calls, no-op dialer, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}Z"
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
