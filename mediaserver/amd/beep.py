"""Streaming beep detector over 20 ms frames.

A beep is one steady tone of `beep_min_hz`..`beep_max_hz` held for at
least `beep_min_ms`. Frames are judged by `beep_kernel.analyse_frame`; a run
of tonal frames at a stable frequency is a tone, and its onset and end are
placed to the sample inside the frames where it starts and stops, so a beep
that straddles frame boundaries gets its true onset and duration.

Rejected: dual tones (ringback, busy, DTMF: residual or beating envelope),
speech and music (residual, unstable frequency), blips shorter than
`beep_min_ms`. A detected tone is reported once, when it ends.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.beep_kernel import analyse_frame, tone_edge
from mediaserver.amd.events import Beep

SAMPLE_RATE = 8000
FRAME = 160  # 20 ms

# Frame tests, measured on the corpus (speech, music on hold, DTMF, busy,
# ringback against the voicemail beeps): see tests/amd/test_beep.py.
MAX_RESIDUAL = 0.0025  # real beeps <= 0.0013; DTMF ~0.06; vowels, music >= 0.004
MIN_FLATNESS = 0.8  # weakest 5 ms block / strongest; ringback beats to ~0.05
MAX_DRIFT_HZ = 8.0  # frame-to-frame frequency change within one tone
MIN_RMS = 30.0  # about -60 dBFS
# Over line noise a beep's residual rises; frames that only pass this looser
# test count when the tone lasts longer. Noise also jitters each frame's
# frequency estimate by up to about 7 Hz at 10 dB SNR, so such frames get
# the strict drift too (a 3 Hz limit split noisy beeps into blips).
LOOSE_RESIDUAL = 0.03  # DTMF pairs start at about 0.04
LOOSE_DRIFT_HZ = 8.0
LOOSE_MIN_MS = 160


class BeepDetector:
    """Feed 20 ms frames in order; get each qualifying tone when it ends."""

    def __init__(
        self,
        *,
        min_ms: int = 80,
        min_hz: float = 300.0,
        max_hz: float = 2500.0,
    ) -> None:
        self._min_samples = min_ms * SAMPLE_RATE // 1000
        self._min_hz = min_hz
        self._max_hz = max_hz
        self._prev: NDArray[np.int16] = np.zeros(FRAME, np.int16)
        self._samples = 0  # stream position of the next frame
        self._onset: int | None = None  # sample where the current tone began
        self._freq = 0.0
        self._frames = 0
        self._level = 0.0
        self._loose = 0  # frames of the current tone that passed loosely
        self._dead_from: int | None = None  # sample where a dead frame began

    @property
    def active_onset_ms(self) -> int | None:
        """Onset of the tone now in progress, if any."""
        return None if self._onset is None else self._onset * 1000 // SAMPLE_RATE

    def feed(self, frame: NDArray[np.int16]) -> list[Beep]:
        """Analyse one 160-sample frame; returns tones that ended in it."""
        if frame.shape[0] != FRAME:
            raise ValueError(f"beep detector needs {FRAME}-sample frames")
        start = self._samples
        freq, rms, residual, flatness = analyse_frame(frame)
        tonal = (
            rms >= MIN_RMS
            and residual <= LOOSE_RESIDUAL
            and flatness >= MIN_FLATNESS
            and self._min_hz - 10.0 <= freq <= self._max_hz + 10.0
        )
        strict = tonal and residual <= MAX_RESIDUAL

        found: list[Beep] = []
        jumped = False
        if self._onset is not None:
            drift = MAX_DRIFT_HZ if strict else LOOSE_DRIFT_HZ
            if tonal and abs(freq - self._freq) <= drift:
                self._extend(freq, rms)
                self._loose += not strict
                self._dead_from = None
            elif rms < MIN_RMS and self._dead_from is None:
                # A dead frame inside a tone may be one lost packet: the next
                # frame says whether the tone goes on (costs 20 ms at the end).
                self._dead_from = start
            else:
                # The tone stopped in this frame, or jumped to another pitch.
                jumped = tonal
                if self._dead_from is not None:
                    end = self._dead_from
                elif tonal:
                    end = start
                else:
                    end = start + tone_edge(
                        frame, self._level, self._freq, rising=False
                    )
                found.extend(self._close(end))
        if self._onset is None and tonal:
            self._open(start, freq, rms, refine=not jumped)
            self._loose = int(not strict)

        self._prev = frame.copy()
        self._samples += FRAME
        return found

    def finish(self) -> list[Beep]:
        """The stream ended: report a tone still in progress."""
        if self._onset is None:
            return []
        return self._close(self._dead_from or self._samples)

    def _open(self, start: int, freq: float, rms: float, *, refine: bool) -> None:
        self._level = 0.5 * rms * math.sqrt(2.0)
        self._onset = start
        if refine and start:
            # The tone may have begun inside the frame before, too short to judge.
            onset = tone_edge(self._prev, self._level, freq, rising=True)
            self._onset = start - FRAME + onset
        self._freq = freq
        self._frames = 1

    def _extend(self, freq: float, rms: float) -> None:
        self._frames += 1
        self._freq += (freq - self._freq) / self._frames
        self._level = max(self._level, 0.5 * rms * math.sqrt(2.0))

    def _close(self, end: int) -> list[Beep]:
        onset, freq = self._onset, self._freq
        self._onset = None
        self._dead_from = None
        assert onset is not None
        needed = self._min_samples
        if self._loose:
            needed = max(needed, LOOSE_MIN_MS * SAMPLE_RATE // 1000)
        if end - onset < needed:
            return []
        if not self._min_hz - 5.0 <= freq <= self._max_hz + 5.0:
            return []
        return [
            Beep(
                onset_ms=onset * 1000 // SAMPLE_RATE,
                end_ms=end * 1000 // SAMPLE_RATE,
                frequency_hz=round(freq, 1),
                duration_ms=(end - onset) * 1000 // SAMPLE_RATE,
            )
        ]
