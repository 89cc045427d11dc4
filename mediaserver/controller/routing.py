"""Caller-ID routing: which business number a destination is called from.

The campaign names a default number and overrides keyed by an E.164
prefix; the longest matching prefix wins, so country codes and area codes
mix freely: `+1` for North America, `+1212` for Manhattan, `+968` for
Oman. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from mediaserver.controller.campaign import (
    CallerIdOverride,
    CallerIdPolicy,
    CallingNumber,
)


def route_caller_id(policy: CallerIdPolicy, destination: str) -> CallingNumber:
    """The number to call `destination` (E.164) from.

    An override applies when the destination starts with its prefix; of
    several, the longest prefix wins; with none, the default applies.
    """
    best = _longest_match(policy.overrides, destination)
    return policy.default if best is None else best.number


def _longest_match(
    overrides: Sequence[CallerIdOverride], destination: str
) -> CallerIdOverride | None:
    best: CallerIdOverride | None = None
    for override in overrides:
        if not destination.startswith(override.prefix):
            continue
        if best is None or len(override.prefix) > len(best.prefix):
            best = override
    return best


class CallerIdRouter:
    """Routes many destinations against one policy, for bulk imports.

    Overrides are indexed by prefix once; each lookup then tries the
    destination's own prefixes from the longest down (at most 15 probes).
    """

    def __init__(self, policy: CallerIdPolicy) -> None:
        self._default = policy.default
        self._by_prefix: dict[str, CallingNumber] = {}
        for override in policy.overrides:  # the first of duplicates wins, as above
            self._by_prefix.setdefault(override.prefix, override.number)
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)

    def route(self, destination: str) -> CallingNumber:
        for length in self._lengths:
            number = self._by_prefix.get(destination[:length])
            if number is not None:
                return number
        return self._default
