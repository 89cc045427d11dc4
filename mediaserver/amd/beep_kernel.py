"""The beep detector's per-frame kernel (numba), behind plain functions.

`analyse_frame` says whether one 20 ms frame holds a single steady tone and
at which frequency. A pure sinusoid obeys x[n] = 2cos(w) x[n-1] - x[n-2], so
a least-squares fit of that one coefficient gives the frequency, and the
fit's residual says how far the frame is from a single tone: speech, noise
and widely spaced dual tones (DTMF, busy) leave a large residual. Closely
spaced dual tones (ringback 440+480 Hz) fit well but beat: their envelope
swings within the frame, which the sub-block envelope check rejects.

`tone_edge` finds, inside a frame, the sample where a tone starts or stops,
so a beep's onset and duration are counted by samples, not frames.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

SAMPLE_RATE = 8000
SUB_BLOCK = 40  # 5 ms envelope blocks


@njit(cache=True, nogil=True)
def _analyse(pcm: NDArray[np.int16]) -> tuple[float, float, float, float]:
    n: int = pcm.shape[0]
    x = np.empty(n, np.float64)
    mean = 0.0
    for i in range(n):
        x[i] = pcm[i]
        mean += x[i]
    mean /= n

    # Least-squares fit of a in x[n] + x[n-2] = a x[n-1].
    num = 0.0
    den = 0.0
    energy = 0.0
    for i in range(2, n):
        prev = x[i - 1] - mean
        num += prev * (x[i] + x[i - 2] - 2.0 * mean)
        den += prev * prev
    for i in range(n):
        energy += (x[i] - mean) * (x[i] - mean)
    if den <= 0.0 or energy <= 0.0:
        return 0.0, 0.0, 1.0, 0.0
    a = num / den
    residual = 0.0
    for i in range(2, n):
        e = (x[i] - mean) - a * (x[i - 1] - mean) + (x[i - 2] - mean)
        residual += e * e

    # Envelope flatness: the weakest 5 ms block against the strongest.
    lo = 1e300
    hi = 0.0
    for b in range(n // SUB_BLOCK):
        s = 0.0
        for i in range(b * SUB_BLOCK, (b + 1) * SUB_BLOCK):
            s += (x[i] - mean) * (x[i] - mean)
        lo = min(lo, s)
        hi = max(hi, s)
    flatness = lo / hi if hi > 0.0 else 0.0

    half = min(1.0, max(-1.0, a / 2.0))
    freq = math.acos(half) * SAMPLE_RATE / (2.0 * math.pi)
    rms = math.sqrt(energy / n)
    return freq, rms, residual / energy, flatness


@njit(cache=True, nogil=True)
def _edge(pcm: NDArray[np.int16], level: float, period: int, rising: bool) -> int:
    n: int = pcm.shape[0]
    x = np.empty(n, np.float64)
    for i in range(n):
        x[i] = pcm[i]
    if rising:
        # Walk back from the end while each period still carries the tone.
        j = n
        while j - period >= 0:
            peak = 0.0
            for i in range(j - period, j):
                peak = max(peak, abs(x[i]))
            if peak < level:
                break
            j -= period
        start = max(j - period, 0)
        for i in range(start, n):
            if abs(x[i]) >= level:
                return i
        return n
    j = 0
    while j + period <= n:
        peak = 0.0
        for i in range(j, j + period):
            peak = max(peak, abs(x[i]))
        if peak < level:
            break
        j += period
    end = min(j + period, n)
    for i in range(end - 1, -1, -1):
        if abs(x[i]) >= level:
            return i + 1
    return 0


def analyse_frame(frame: NDArray[np.int16]) -> tuple[float, float, float, float]:
    """(frequency Hz, rms, residual ratio, envelope flatness) of one frame."""
    return _analyse(frame)  # type: ignore[no-any-return]


def tone_edge(
    frame: NDArray[np.int16], level: float, frequency_hz: float, *, rising: bool
) -> int:
    """Sample index in `frame` where a tone of `level` peak starts (or ends)."""
    period = max(2, round(SAMPLE_RATE / max(frequency_hz, 1.0)))
    return int(_edge(frame, level, period, rising))
