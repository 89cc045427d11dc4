"""Remembering which calls a dialer has hung up, so each is hung up once."""

from __future__ import annotations

from collections import OrderedDict


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
