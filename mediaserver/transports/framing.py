"""Sans-I/O frame bookkeeping for both directions of a media stream.

`FrameSequencer` puts inbound frames into stream order by their chunk
counter and fills gaps with silence, so that stream time (counted by
samples) stays true when the carrier drops frames. `OutboundPacer` holds
the agent's audio and marks, cuts the audio into 20 ms frames and releases
them at real time plus a small lead, which bounds what a `clear` discards.
"""

from __future__ import annotations

from collections import deque

from mediaserver.transports.common import FRAME_BYTES, FRAME_MS, chunk_number


class FrameSequencer:
    """Orders inbound frames and inserts silence for missing chunks.

    With `reorder_depth` 0 (Twilio: TCP keeps order) a frame is released at
    once; with depth N (Telnyx does not promise order) up to N frames wait
    for a missing one before the gap is filled with silence.
    """

    def __init__(
        self, silence_byte: int, *, reorder_depth: int = 0, max_gap_frames: int = 250
    ) -> None:
        self._silence = bytes([silence_byte]) * FRAME_BYTES
        self._depth = reorder_depth
        self._max_gap = max_gap_frames
        self._next: int | None = None
        self._held: dict[int, bytes] = {}
        self._emitted = False
        self.gaps = 0  # times a gap was filled
        self.silence_frames = 0  # frames of silence inserted
        self.late_frames = 0  # frames that came after their slot was filled
        self.unnumbered = 0  # frames without a usable chunk counter

    def push(self, chunk: str | int | None, payload: bytes) -> list[bytes]:
        """Frames now ready, in stream order (silence included)."""
        number = chunk_number(chunk)
        if number is None:
            self.unnumbered += 1
            return [payload]
        expected = self._next
        if expected is None and self._depth == 0:
            expected = number
        if number == expected and not self._held:
            self._next = number + 1
            self._emitted = True
            return [payload]
        if expected is None or (number < expected and not self._emitted):
            # Nothing released yet: the stream may start before this frame.
            self._next = number
        elif number < expected:
            self.late_frames += 1
            return []
        self._held[number] = payload
        return self._release()

    def flush(self) -> list[bytes]:
        """Everything still held, gaps filled (end of stream)."""
        out: list[bytes] = []
        while self._held:
            out.extend(self._fill_to(min(self._held)))
            out.extend(self._drain())
        return out

    def _release(self) -> list[bytes]:
        if not self._emitted and len(self._held) <= self._depth:
            return []  # the first frames wait for any earlier one
        out = self._drain()
        while len(self._held) > self._depth:
            out.extend(self._fill_to(min(self._held)))
            out.extend(self._drain())
        return out

    def _drain(self) -> list[bytes]:
        out: list[bytes] = []
        assert self._next is not None
        while self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next += 1
            self._emitted = True
        return out

    def _fill_to(self, number: int) -> list[bytes]:
        # A wild counter must not allocate minutes of silence: cap the fill.
        assert self._next is not None
        missing = number - self._next
        self._next = number
        self.gaps += 1
        count = min(missing, self._max_gap)
        self.silence_frames += count
        return [self._silence] * count


class OutboundPacer:
    """The agent's outbound audio and marks, released as 20 ms frames.

    Times are seconds on any monotonic clock the caller passes in. Within a
    talk spurt, frame k is due at `spurt_start + (k - lead_frames) * 20 ms`;
    the spurt restarts when the queue runs dry.
    """

    def __init__(
        self,
        silence_byte: int,
        *,
        lead_frames: int = 3,
        max_buffer_s: float = 120.0,
    ) -> None:
        self._silence_byte = silence_byte
        self._lead = lead_frames
        self._max_bytes = int(max_buffer_s * 8000)
        self._audio = bytearray()
        self._marks: deque[tuple[int, str]] = deque()  # (byte offset, name)
        self._spurt_start: float | None = None
        self._spurt_frames = 0
        self._last_add = 0.0
        self.dropped_bytes = 0  # audio refused because the buffer was full
        self.generation = 0  # bumped by every clear

    @property
    def idle(self) -> bool:
        return not self._audio and not self._marks

    @property
    def queued_ms(self) -> int:
        return len(self._audio) // 8

    def add_audio(self, data: bytes, now: float) -> None:
        room = self._max_bytes - len(self._audio)
        if len(data) > room:
            self.dropped_bytes += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self._audio += data
        self._last_add = now

    def add_mark(self, name: str) -> None:
        self._marks.append((len(self._audio), name))

    def clear(self) -> list[str]:
        """Drop queued audio; return the marks that will now never play."""
        names = [name for _, name in self._marks]
        self.generation += 1
        self._audio.clear()
        self._marks.clear()
        self._spurt_start = None
        return names

    def take(self, now: float) -> list[bytes | str]:
        """Frames (bytes) and marks (str) due at `now`, in order."""
        out: list[bytes | str] = []
        self._pop_marks(out)
        if not self._audio:
            self._spurt_start = None
            return out
        if self._spurt_start is None:
            self._spurt_start = now
            self._spurt_frames = 0
        due = int((now - self._spurt_start) * 1000 / FRAME_MS) + self._lead
        while self._spurt_frames < due and self._audio:
            if len(self._audio) < FRAME_BYTES and not self._pad_tail(now):
                break
            out.append(bytes(self._audio[:FRAME_BYTES]))
            del self._audio[:FRAME_BYTES]
            self._shift_marks(FRAME_BYTES)
            self._spurt_frames += 1
            self._pop_marks(out)
        return out

    def next_due(self, now: float) -> float:
        """Seconds until the next frame may go (0 when one is due now)."""
        if self._spurt_start is None:
            return 0.0
        at = self._spurt_start + (self._spurt_frames - self._lead + 1) * FRAME_MS / 1e3
        return max(0.0, at - now)

    def _pad_tail(self, now: float) -> bool:
        # A short tail is padded once a mark follows it or the agent went quiet.
        if self._marks or now - self._last_add >= 2 * FRAME_MS / 1000:
            pad = FRAME_BYTES - len(self._audio)
            self._audio += bytes([self._silence_byte]) * pad
            self._marks = deque((min(o, FRAME_BYTES), n) for o, n in self._marks)
            return True
        return False

    def _shift_marks(self, count: int) -> None:
        if self._marks:
            self._marks = deque((o - count, n) for o, n in self._marks)

    def _pop_marks(self, out: list[bytes | str]) -> None:
        while self._marks and self._marks[0][0] <= 0:
            out.append(self._marks.popleft()[1])
