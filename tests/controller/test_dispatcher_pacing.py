"""Dial pacing: calls_per_second spaces calls out instead of bursting them.

At 20 cps the old bucket (a second's worth) started 10 or more calls in the
same millisecond. The dispatcher is driven here by a hand-moved clock, each
pass run when the previous one asked to be woken, so nothing depends on
real time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.controller.dispatcher import BURST_S, TokenBucket
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore
from tests.controller.queue_support import FakeClock, RecordingDialer, campaign, launch


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def _dial_times(engine: AsyncEngine, rate: float, calls: int) -> list[float]:
    """Seconds from the start at which each of `calls` queued calls was dialled."""
    clock = FakeClock()
    start = clock()
    dialer = RecordingDialer()
    controller = Controller(
        QueueStore(engine, clock=clock),
        StaticCampaigns([campaign(calls_per_second=rate, max_concurrent_calls=1000)]),
        {"simulated": dialer},
        media_urls={},
        token_secret=b"s" * 32,
        clock=clock,
    )
    await controller.enqueue([launch(f"+1212555{i:04d}") for i in range(calls)])
    times: list[float] = []
    for _ in range(calls * 10):
        wait = await controller.dispatcher.dispatch_once()
        await controller.dispatcher.drain()
        elapsed = (clock() - start).total_seconds()
        times += [elapsed] * (len(dialer.requests) - len(times))
        if len(times) == calls:
            break
        # The loop sleeps as asked; a 0 s answer means "run again now".
        clock.advance(max(wait, 0.0))
    return times


async def test_twenty_per_second_are_fifty_ms_apart(engine: AsyncEngine) -> None:
    times = await _dial_times(engine, 20.0, 30)
    assert len(times) == 30
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert min(gaps) == pytest.approx(0.05, abs=2e-6)
    assert max(gaps) == pytest.approx(0.05, abs=2e-6)
    assert times[20] == pytest.approx(1.0, abs=1e-4)  # 20 a second, no more


async def test_fast_rates_start_at_most_a_small_burst_together(
    engine: AsyncEngine,
) -> None:
    rate = 500.0
    times = await _dial_times(engine, rate, 60)
    assert len(times) == 60
    together = max(Counter(round(t, 6) for t in times).values())
    assert together <= rate * BURST_S  # 5 calls in 10 ms, not 500 at once
    assert times[-1] == pytest.approx((60 - rate * BURST_S) / rate, abs=1e-3)


def test_the_bucket_never_saves_up_more_than_its_burst() -> None:
    bucket = TokenBucket(20.0, now=0.0)
    assert bucket.burst == 1.0
    assert bucket.available(0.0) == 1
    bucket.take(1, 0.0)
    assert bucket.wait_s(0.0) == pytest.approx(0.05, abs=2e-6)
    assert bucket.available(0.049) == 0
    assert bucket.available(0.05) == 1
    assert bucket.available(3600.0) == 1  # an hour idle still allows one
    assert TokenBucket(1000.0, now=0.0).burst == 10.0
    assert TokenBucket(0.5, now=0.0).burst == 1.0
    explicit = TokenBucket(20.0, now=0.0, burst=4)
    assert explicit.available(dt.timedelta(hours=1).total_seconds()) == 4
