"""Suite-wide fixtures: a check that no asyncio task outlives its test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running: every task must have an owner."""
    before = set(asyncio.all_tasks())
    yield
    # Give cancelled tasks one turn to finish unwinding.
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [
        t
        for t in asyncio.all_tasks()
        if t not in before and t is not current and not t.done()
    ]
    if leaked:
        names = ", ".join(sorted(t.get_name() for t in leaked))
        for task in leaked:
            task.cancel()
        raise AssertionError(
            f"test left {len(leaked)} asyncio task(s) running: {names}"
        )
