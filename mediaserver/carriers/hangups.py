"""Hanging each call up once, whatever the carrier.

A dialer names the carrier, the request that ends a call, which failures
mean the call had already ended (success) and how to turn a failure into
a `CarrierError`; `HungUpCalls.hang_up` does the rest. A failed hang-up is
forgotten, so it may be tried again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from mediaserver.errors import CarrierError

log = logging.getLogger(__name__)


class HungUpCalls:
    """Calls this dialer has already hung up, so each is hung up only once."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._calls: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def first(self, provider_call_id: str) -> bool:
        """True the first time a call is named; remembers it."""
        if provider_call_id in self._calls:
            return False
        self._calls[provider_call_id] = None
        while len(self._calls) > self._capacity:
            self._calls.popitem(last=False)
        return True

    def forget(self, provider_call_id: str) -> None:
        """A failed hang-up may be tried again."""
        self._calls.pop(provider_call_id, None)

    async def hang_up(
        self,
        provider_call_id: str,
        send: Callable[[], Awaitable[object]],
        *,
        carrier: str,
        already_ended: Callable[[Exception], bool],
        to_error: Callable[[Exception, str], CarrierError],
    ) -> None:
        """Await `send()` the first time a call is named; later calls do nothing.

        Raises:
            CarrierError: `to_error(exc, "hangup")` for a failure that is not
                `already_ended`.
        """
        if not self.first(provider_call_id):
            return
        try:
            await send()
        except Exception as exc:
            if already_ended(exc):
                log.info("%s call %s had already ended", carrier, provider_call_id)
                return
            self.forget(provider_call_id)
            raise to_error(exc, "hangup") from exc
        log.info("%s hung up %s", carrier, provider_call_id)
