"""Speech segments from per-chunk VAD probabilities, with hysteresis.

Speech starts at the first chunk at or above the threshold and ends at the
first of `min_silence_chunks` chunks below ``threshold - 0.15``. Times are
stream milliseconds: a start is the start of its chunk, an end the start of
the first quiet chunk.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

Edge = tuple[Literal["start", "end"], int]


class SpeechSegmenter:
    def __init__(self, threshold: float = 0.5, min_silence_chunks: int = 2) -> None:
        self._on = threshold
        self._off = max(0.0, threshold - 0.15)
        self._min_quiet = min_silence_chunks
        self._speaking = False
        self._quiet = 0
        self._quiet_since = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(self, prob: float, start_ms: int, end_ms: int) -> Edge | None:
        """One chunk's probability; returns a segment edge when one is found."""
        if not self._speaking:
            if prob >= self._on:
                self._speaking = True
                self._quiet = 0
                return ("start", start_ms)
            return None

        if prob >= self._off:
            self._quiet = 0
            return None
        if self._quiet == 0:
            self._quiet_since = start_ms
        self._quiet += 1
        if self._quiet >= self._min_quiet:
            self._speaking = False
            return ("end", self._quiet_since)
        return None

    def close(self, end_ms: int) -> Edge | None:
        """The stream ended: close an open segment."""
        if not self._speaking:
            return None
        self._speaking = False
        return ("end", self._quiet_since if self._quiet else end_ms)


class NoiseFloor:
    """The line's noise level: the quietest 32 ms chunk of the last window.

    Speech must stand `margin_db` above it. Over a window of a second or
    two, speech always dips between words, so speech alone keeps the floor
    low while a steady background (an office, a street) sets it.
    """

    def __init__(self, margin_db: float, window_chunks: int = 47) -> None:
        self.margin_db = margin_db
        self._window = window_chunks
        self._mins: deque[tuple[int, float]] = deque()  # increasing levels
        self._index = 0

    @property
    def floor_db(self) -> float | None:
        return self._mins[0][1] if self._mins else None

    def admits(self, level_db: float) -> bool:
        """Update with one chunk's level; True if it may be speech."""
        self.add(level_db)
        return level_db >= self._mins[0][1] + self.margin_db

    def add(self, level_db: float) -> None:
        """One more chunk of the line's background."""
        while self._mins and self._mins[-1][1] >= level_db:
            self._mins.pop()
        self._mins.append((self._index, level_db))
        if self._mins[0][0] <= self._index - self._window:
            self._mins.popleft()
        self._index += 1
