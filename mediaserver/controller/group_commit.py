"""Group commit of accepted dials: one transaction for every dial that landed
while the previous one was being written.

Under load many dials return at once; writing each `initiated` in its own
transaction makes SQLite's single writer the bottleneck. Callers still wait
until their own row is committed, and a batch that fails (a hook refusing
one row) is written again row by row, so one bad row holds nobody back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from mediaserver.controller.status import CallStatus
from mediaserver.store.queue import QueueStore

log = logging.getLogger(__name__)

_Item = tuple[str, Mapping[str, Any], "asyncio.Future[None]"]


class InitiatedWriter:
    """Records `dispatching -> initiated` for many attempts per transaction."""

    def __init__(self, store: QueueStore) -> None:
        self._store = store
        self._pending: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, attempt_id: str, values: Mapping[str, Any]) -> None:
        """Return once the attempt's `initiated` is committed (or raise why not)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((attempt_id, values, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="initiated-writer")
        await asyncio.shield(done)

    async def close(self) -> None:
        """Wait for what is queued to be written."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._store.transaction() as conn:
                    for attempt_id, values, _done in batch:
                        await self._write(conn, attempt_id, values)
            except Exception:
                log.warning("batched write of %d dials failed; one by one", len(batch))
                for item in batch:
                    await self._write_alone(item)
                continue
            for _attempt_id, _values, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _write_alone(self, item: _Item) -> None:
        attempt_id, values, done = item
        try:
            async with self._store.transaction() as conn:
                await self._write(conn, attempt_id, values)
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(None)

    async def _write(
        self, conn: Any, attempt_id: str, values: Mapping[str, Any]
    ) -> None:
        await self._store.transition(
            conn,
            attempt_id,
            CallStatus.INITIATED,
            values=values,
            detail="dial accepted",
            strict=False,  # carrier news may have got here first
            expect=CallStatus.DISPATCHING,
        )
