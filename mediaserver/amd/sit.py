"""Special information tones (SIT, ITU-T E.180 / Telcordia SR-2275).

A network announcement ("the number you have dialled is not in service",
"all circuits are busy") starts with three rising tones: about 914 or 985
Hz, then 1371 or 1429 Hz, then 1777 Hz, each 274 or 380 ms long. They come
out of the beep detector as three consecutive single tones; `SitDetector`
watches those tones and says when the pattern is complete.

Because each SIT tone would also pass as a beep, a tone that may open a SIT
is held back until the pattern completes (it is then dropped) or breaks (it
is then released as a beep). The hold lasts at most `GAP_MS` after the tone
ends, which keeps a real beep's leave-message cue inside its budget.
"""

from __future__ import annotations

from mediaserver.amd.events import Beep

# (low, high) frequency bands of the three tones, in order.
BANDS = ((880.0, 1020.0), (1330.0, 1470.0), (1740.0, 1815.0))
MIN_MS = 200
MAX_MS = 450
GAP_MS = 60  # longest silence allowed between two tones of the pattern


def _fits(beep: Beep, index: int) -> bool:
    low, high = BANDS[index]
    return low <= beep.frequency_hz <= high and MIN_MS <= beep.duration_ms <= MAX_MS


class SitDetector:
    """Filters the beep detector's tones: holds SIT candidates, spots the SIT."""

    def __init__(self) -> None:
        self._held: list[Beep] = []
        self.detected_at_ms: int | None = None

    def feed(self, tones: list[Beep], now_ms: int, tone_active: bool) -> list[Beep]:
        """Take newly ended tones; return the ones that are beeps after all.

        `now_ms` is the stream time; `tone_active` says whether the beep
        detector is inside a tone right now (the next SIT tone may be it).
        """
        released: list[Beep] = []
        for tone in tones:
            released.extend(self._take(tone))

        # A held tone with nothing following it in time is a plain beep.
        if self._held and not tone_active and now_ms - self._held[-1].end_ms > GAP_MS:
            released.extend(self._held)
            self._held.clear()
        return released

    def _take(self, tone: Beep) -> list[Beep]:
        index = len(self._held)
        follows = not self._held or tone.onset_ms - self._held[-1].end_ms <= GAP_MS
        if follows and _fits(tone, index):
            self._held.append(tone)
            if len(self._held) == len(BANDS):
                self.detected_at_ms = tone.end_ms
                self._held.clear()
            return []

        # The pattern broke: what was held is ordinary; this tone may restart it.
        released = list(self._held)
        self._held.clear()
        if _fits(tone, 0):
            self._held.append(tone)
            return released
        return [*released, tone]
