"""Level tests around the VAD: the line's noise floor, the foreground talker, gain.

Levels are a 32 ms chunk's mean power in dB above one LSB squared, so full
scale is about 90 dB and a chunk of -40 dBFS is about 50 dB.

`LevelGate` does three things per chunk, all Sans-I/O:

* `gain` says how much to lift the chunk before the model sees it. Silero
  misses quiet voices (a far handset after band-limiting and G.711), so the
  loudest recent chunk is lifted towards `target_db`, but never so far that
  the quietest recent chunk would rise above `floor_cap_db`: a quiet voice on
  a quiet line is lifted, a hiss is not made loud.
* `judge` takes the model's probability and the chunk's level. The chunk
  must stand `margin_db` above the noise floor, the quietest chunk of the
  recent non-speech (speech is kept out of it, or a long greeting would
  raise the floor to its own quietest syllable). On a noisy line, where the
  loudest recent chunk is close to the floor, the margin shrinks so that
  speech at 10 dB SNR still passes, but such weak chunks count only when the
  model is sure of them.
* Speech `background_db` or more below the foreground talker (the loudest
  recent speech) is someone else, a TV or a radio in the room, and is not
  counted, except for a few chunks right after the talker's own speech: a
  word's tail fades below that bar. Speech starting after a pause must come
  within `START_WITHIN_DB` of the talker, a stricter bar: a TV's loudest
  words cannot open an utterance of their own.
"""

from __future__ import annotations

import math
from collections import deque

from mediaserver.amd.segments import NoiseFloor

# On a noisy line the margin shrinks to a third of the loudest recent chunk's
# height over the floor, never below 2 dB; chunks that pass only the shrunk
# margin need a confident model.
SNR_SHARE = 3.0
MIN_MARGIN_DB = 2.0
WEAK_MIN_PROB = 0.95
SPEECH_PROB = 0.5  # a chunk at least this likely is speech, for the statistics
QUIET_PROB = 0.35  # below this the segmenter counts a chunk as quiet
START_WITHIN_DB = 14.0


class RecentPeak:
    """The loudest level of the last `window` chunks (a monotonic deque)."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._peaks: deque[tuple[int, float]] = deque()  # decreasing levels
        self._index = 0

    @property
    def level_db(self) -> float | None:
        if not self._peaks or self._peaks[0][1] == -math.inf:
            return None
        return self._peaks[0][1]

    def add(self, level_db: float) -> None:
        while self._peaks and self._peaks[-1][1] <= level_db:
            self._peaks.pop()
        self._peaks.append((self._index, level_db))
        if self._peaks[0][0] <= self._index - self._window:
            self._peaks.popleft()
        self._index += 1


class LevelGate:
    def __init__(
        self,
        *,
        margin_db: float,
        window_chunks: int,
        background_db: float,
        max_gain: float,
        target_db: float = 66.0,
        floor_cap_db: float = 36.0,
        foreground_chunks: int = 94,
        tail_chunks: int = 6,
    ) -> None:
        self.margin_db = margin_db
        self._floor = NoiseFloor(margin_db, window_chunks)
        # The gain runs when a chunk arrives, the tests when its probability
        # does (later, when batched): each keeps its own statistics so that
        # batched and inline calls decide alike.
        self._loudest = RecentPeak(window_chunks)
        self._quietest = NoiseFloor(0.0, window_chunks)
        self._heard = RecentPeak(window_chunks)
        self._foreground = RecentPeak(foreground_chunks)
        self._background_db = background_db
        self._max_gain = max_gain
        self._target_db = target_db
        self._floor_cap_db = floor_cap_db
        self._tail_chunks = tail_chunks
        self._tail = tail_chunks + 1  # chunks since the talker's last loud one
        self._quiet_run = 2  # chunks in a row the segmenter would call quiet

    @property
    def floor_db(self) -> float | None:
        return self._floor.floor_db

    @property
    def foreground_db(self) -> float | None:
        return self._foreground.level_db

    def gain(self, level_db: float) -> float:
        """Linear gain for this chunk's VAD input; chunks come in stream order."""
        self._loudest.add(level_db)
        self._quietest.add(level_db)
        loudest, quietest = self._loudest.level_db, self._quietest.floor_db
        if self._max_gain <= 1.0 or loudest is None or quietest is None:
            return 1.0
        lift = min(self._target_db - loudest, self._floor_cap_db - quietest)
        if lift <= 0.0:
            return 1.0
        return float(min(self._max_gain, 10.0 ** (lift / 20.0)))

    def judge(self, prob: float, level_db: float) -> float:
        """The model's probability for a chunk, with the level tests applied."""
        foreground = self._foreground.level_db
        out = self._judge(prob, level_db)
        # Speech starting anew must come within `START_WITHIN_DB` of the
        # talker: a TV's loudest words then cannot open an utterance.
        if (
            out >= SPEECH_PROB
            and self._quiet_run >= 2
            and foreground is not None
            and level_db < foreground - START_WITHIN_DB
        ):
            out = 0.0
        self._quiet_run = self._quiet_run + 1 if out < QUIET_PROB else 0
        return out

    def _judge(self, prob: float, level_db: float) -> float:
        self._heard.add(level_db)
        if not self._above_noise(prob, level_db):
            self._floor.add(level_db)
            self._foreground.add(-math.inf)
            self._tail += 1
            return 0.0
        if prob < SPEECH_PROB:
            self._floor.add(level_db)

        foreground = self._foreground.level_db
        self._foreground.add(level_db if prob >= SPEECH_PROB else -math.inf)
        if foreground is None or level_db >= foreground - self._background_db:
            self._tail = 0
            return prob
        self._tail += 1
        return prob if self._tail <= self._tail_chunks else 0.0

    def _above_noise(self, prob: float, level_db: float) -> bool:
        floor = self._floor.floor_db
        if floor is None or level_db >= floor + self.margin_db:
            return True
        loudest = self._heard.level_db
        if loudest is None:
            return False
        margin = min(self.margin_db, max(MIN_MARGIN_DB, (loudest - floor) / SNR_SHARE))
        return level_db >= floor + margin and prob >= WEAK_MIN_PROB
