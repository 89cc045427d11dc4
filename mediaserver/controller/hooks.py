"""What the store calls on every status change, inside the same transaction.

The actions helper implements `LifecycleHooks` to write lifecycle events to
its outbox; writing them in the status change's transaction means an event
exists exactly when the change does, whatever crashes afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


class LifecycleHooks(Protocol):
    async def on_transition(
        self,
        conn: AsyncConnection,
        attempt: Mapping[str, Any],
        old_status: str | None,
        new_status: str,
    ) -> None:
        """Called after the attempt row is updated; `attempt` is the new row."""
        ...


class NoHooks:
    """The default: nothing happens on a transition."""

    async def on_transition(
        self,
        conn: AsyncConnection,
        attempt: Mapping[str, Any],
        old_status: str | None,
        new_status: str,
    ) -> None:
        return None
