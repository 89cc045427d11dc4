"""Per-call and process-wide counters for the media plane.

Rare conditions (bad frames, gaps, agent failures) are counted by name on
the call and in `PROCESS`; the frame counter is a plain attribute summed
into `PROCESS` when the call ends, so the hot path adds one integer
increment. `LagRecorder` keeps how far processing ran behind real time.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

PROCESS: Counter[str] = Counter()


class CallCounters:
    """What went wrong, and how often, on one call."""

    __slots__ = ("counts", "frames_in", "frames_out")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.frames_in = 0
        self.frames_out = 0

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] += n
        PROCESS[key] += n

    def close(self) -> None:
        """Fold the frame counters into the process totals (once, at call end)."""
        PROCESS["frames_in"] += self.frames_in
        PROCESS["frames_out"] += self.frames_out
        PROCESS["calls_ended"] += 1

    def as_dict(self) -> dict[str, int]:
        return {**self.counts, "frames_in": self.frames_in}


class LagRecorder:
    """Frame lag samples in ms (processing time minus stream time), bounded."""

    def __init__(self, capacity: int = 2_000_000) -> None:
        self._values = np.zeros(capacity, np.float32)
        self._n = 0

    def add(self, lag_ms: float) -> None:
        if self._n < len(self._values):
            self._values[self._n] = lag_ms
            self._n += 1

    def percentiles(self, *qs: float) -> list[float]:
        if self._n == 0:
            return [float("nan")] * len(qs)
        return [float(v) for v in np.percentile(self._values[: self._n], qs)]

    @property
    def count(self) -> int:
        return self._n

    def reset(self) -> None:
        self._n = 0
