"""The two media directions of a WebRTC call, without the network.

`InboundFramer` turns the peer's decoded frames (Opus at 48 kHz stereo,
PCMU/PCMA at 8 kHz mono, G.722 at 16 kHz: carriers.md section 5.3) into
the 20 ms mu-law frames the call session takes, and fills pts gaps (lost
packets) with silence. `AgentAudioTrack` is the agent's voice as an aiortc
track, pulled by the peer at real time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from numpy.typing import NDArray

from mediaserver.codecs.g711 import pcm_to_ulaw, ulaw_to_pcm
from mediaserver.transports.common import FRAME_BYTES

RATE = 8000
FRAME_SAMPLES = FRAME_BYTES  # one mu-law byte per sample
SILENT_FRAME = bytes([0xFF]) * FRAME_BYTES


# Inbound: decoded frames of any codec to 20 ms mu-law frames.


class InboundFramer:
    """Peer audio frames in, 160-byte mu-law frames out, gaps filled.

    One resampler per input shape: a new codec or layout (renegotiation)
    gets a new one instead of the ValueError PyAV raises.
    """

    def __init__(self, *, max_gap_s: float = 5.0) -> None:
        self._max_gap = int(max_gap_s * RATE)
        self._resampler: av.AudioResampler | None = None
        self._shape: tuple[str, str, int] | None = None
        self._next_pts: int | None = None
        self._pending: NDArray[np.int16] = np.zeros(0, np.int16)
        self.silence_samples = 0  # inserted for pts gaps
        self.gaps = 0

    def push(self, frame: av.AudioFrame) -> list[bytes]:
        """The whole 20 ms frames this input completes.

        Raises:
            ValueError: the frame has no rate or samples, or PyAV refused it;
                the framer stays usable for the next frame.
        """
        if not frame.sample_rate or not frame.samples:
            raise ValueError("audio frame without a sample rate or samples")
        gap = self._gap_samples(frame)
        if gap:
            self.gaps += 1
            self.silence_samples += gap
            self._append(np.zeros(gap, np.int16))
        try:
            pcm = self._resample(frame)
        except ValueError:
            self._resampler = None  # its filter graph may be broken now
            raise
        self._append(pcm)
        return self._cut()

    def _gap_samples(self, frame: av.AudioFrame) -> int:
        # pts counts input samples (time base 1/rate); a jump forward is loss.
        pts, rate = frame.pts, frame.sample_rate
        expected, self._next_pts = self._next_pts, None
        if self._shape is not None and rate != self._shape[2]:
            expected = None  # a new codec starts a new timeline
        if pts is None or not rate:
            return 0
        self._next_pts = pts + frame.samples
        if expected is None or pts <= expected:
            return 0
        return min((pts - expected) * RATE // rate, self._max_gap)

    def _resample(self, frame: av.AudioFrame) -> NDArray[np.int16]:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or shape != self._shape:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            self._shape = shape
        # Continuity is ours to keep (gaps are filled above): drop the pts so
        # the resampler's filter graph does not see a timeline jump.
        frame.pts = None
        out = self._resampler.resample(frame)
        if not out:
            return np.zeros(0, np.int16)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(
            np.int16, copy=False
        )

    def _append(self, samples: NDArray[np.int16]) -> None:
        if samples.size:
            self._pending = np.concatenate((self._pending, samples))

    def _cut(self) -> list[bytes]:
        whole = len(self._pending) // FRAME_SAMPLES * FRAME_SAMPLES
        if not whole:
            return []
        encoded = pcm_to_ulaw(self._pending[:whole])
        self._pending = self._pending[whole:]
        return [
            encoded[i : i + FRAME_BYTES] for i in range(0, len(encoded), FRAME_BYTES)
        ]


# Outbound: the session's mu-law frames to the peer, at real time.


class AgentAudioTrack(MediaStreamTrack):
    """The agent's voice as a WebRTC track: s16 mono 8 kHz, 20 ms a frame.

    aiortc pulls frames as fast as `recv` returns them, so `recv` waits
    until each frame is due; with nothing queued it sends silence. Marks
    that reach the head of the queue are handed to `played` (their audio
    went out); `clear` drops the audio and hands over every mark.
    """

    kind = "audio"

    def __init__(self, *, max_queued_s: float = 10.0) -> None:
        super().__init__()
        self._items: deque[bytes | str] = deque()
        self._queued = 0  # audio frames in `_items`
        self._max_frames = int(max_queued_s * 1000 / 20)
        self._start: float | None = None
        self._pts = 0
        self.played: asyncio.Queue[str] = asyncio.Queue()
        self.frames_sent = 0
        self.audio_frames_sent = 0
        self.dropped_frames = 0

    def add_audio(self, payload: bytes) -> None:
        for i in range(0, len(payload), FRAME_BYTES):
            frame = payload[i : i + FRAME_BYTES]
            if self._queued >= self._max_frames:
                self.dropped_frames += 1
                continue
            if len(frame) < FRAME_BYTES:
                frame += SILENT_FRAME[len(frame) :]
            self._items.append(frame)
            self._queued += 1

    def add_mark(self, name: str) -> None:
        self._items.append(name)

    def clear(self) -> None:
        for item in self._items:
            if isinstance(item, str):
                self.played.put_nowait(item)
        self._items.clear()
        self._queued = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self._pts / RATE - now
        if wait > 0:
            await asyncio.sleep(wait)

        payload = self._next_payload()
        pcm = ulaw_to_pcm(payload).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = Fraction(1, RATE)
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return frame

    def _next_payload(self) -> bytes:
        items = self._items
        while items and isinstance(items[0], str):
            self.played.put_nowait(items.popleft())  # type: ignore[arg-type]
        if not items:
            return SILENT_FRAME
        self._queued -= 1
        self.audio_frames_sent += 1
        payload = items.popleft()
        assert isinstance(payload, bytes)
        return payload
