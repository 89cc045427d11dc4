"""One call's AMD pipeline: inbound 8 kHz audio in, AMD events out.

Contract for the media glue:

* ``AmdPipeline(settings, vad=shared_vad, call_id=...)`` per call, where
  ``shared_vad`` is one `SileroVad` per process (the pipeline keeps its own
  `VadStream`; `call_id` only tags log lines).
  ``settings.enabled=False`` gives a pipeline that is `done` at once and
  never emits anything.
* ``push(pcm)`` takes any number of int16 samples of the inbound (callee)
  track, in order, usually 160 (20 ms). It runs the beep and SIT detectors
  per 20 ms frame and the VAD per 32 ms chunk, and returns the events they
  caused, in order. Keep pushing while the agent speaks: analysis goes on
  until a final action. A malformed frame is dropped with a warning.
* ``finish()`` when the stream ends; returns the closing events.
* ``done`` turns true after the verdict and, for machines, the final action.
  Stop pushing then: the VAD stops costing anything.
* LLM verification: on `LlmCheckWanted`, take ``greeting_audio()``, ask the
  model, then call ``llm_answer(label_or_None)`` (see verdict.py for how the
  answer and its deadline are used). ``llm_request`` tells whether one is
  awaited.
* Batched VAD for many calls: build pipelines with ``batcher=VadBatcher(vad)``
  instead of ``vad=``; `push` then returns only the events that need no VAD
  (beeps, SIT), and ``batcher.run()`` once per loop tick runs every call's
  complete chunks in one inference and returns ``[(pipeline, events)]``.
  See batch.py.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.beep import FRAME, BeepDetector
from mediaserver.amd.events import AmdEvent, Label, LlmCheckWanted, Verdict
from mediaserver.amd.levels import LevelGate
from mediaserver.amd.segments import SpeechSegmenter
from mediaserver.amd.settings import AmdSettings
from mediaserver.amd.sit import SitDetector
from mediaserver.amd.vad import CHUNK, SileroVad, VadStream, is_silent
from mediaserver.amd.verdict import Phase, VerdictMachine
from mediaserver.logs import RateLimitedLog

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)

SAMPLES_PER_MS = 8
GREETING_KEEP_MS = 12000  # greeting audio kept for the LLM check
_LEAD_IN_MS = 200  # audio kept before the first speech for the LLM check


class AmdPipeline:
    def __init__(
        self,
        settings: AmdSettings,
        vad: SileroVad | None = None,
        *,
        batcher: VadBatcherLike | None = None,
        call_id: str = "",
    ) -> None:
        if (vad is None) == (batcher is None) and settings.enabled:
            raise ValueError("give exactly one of vad= or batcher=")
        self.settings = settings
        self.call_id = call_id  # for log lines only
        self.stream = VadStream()
        self._vad = vad
        self._batcher = batcher
        self._machine = VerdictMachine(settings, call_id)
        self._beeps = BeepDetector(
            min_ms=settings.beep_min_ms,
            min_hz=settings.beep_min_hz,
            max_hz=settings.beep_max_hz,
        )
        self._sit = SitDetector()
        self._segments = SpeechSegmenter(settings.vad_threshold)
        # Chunk levels awaiting their VAD answer.
        self._levels: deque[float] = deque()
        self._gate = LevelGate(
            margin_db=settings.noise_margin_db,
            window_chunks=settings.noise_window_ms // 32,
            background_db=settings.background_speech_db,
            max_gain=settings.vad_max_gain,
        )
        self._frame = np.zeros(FRAME, np.int16)
        self._frame_fill = 0
        self._chunk = np.zeros(CHUNK, np.int16)
        self._chunk_fill = 0
        self._frames_done = 0
        self._chunks_done = 0  # chunks whose probability is known
        self._in_flight = 0  # chunks handed to the batcher, not yet back
        self._keep: NDArray[np.int16] | None = None
        self._kept = 0
        if settings.llm_verification:
            self._keep = np.zeros(GREETING_KEEP_MS * SAMPLES_PER_MS, np.int16)
        self.dropped_frames = 0
        self._disabled = not settings.enabled

    @property
    def done(self) -> bool:
        return self._disabled or self._machine.done

    @property
    def verdict(self) -> Verdict | None:
        return self._machine.verdict

    @property
    def llm_request(self) -> LlmCheckWanted | None:
        """The pending LLM check, while one is awaited."""
        if self._machine.phase is not Phase.LLM_WAIT:
            return None
        return self._machine.llm_request

    @property
    def stream_ms(self) -> int:
        return (self._frames_done * FRAME + self._frame_fill) // SAMPLES_PER_MS

    def push(self, pcm: NDArray[np.int16]) -> list[AmdEvent]:
        """Feed inbound samples; returns the events they caused."""
        if self.done:
            return []
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
            self.dropped_frames += 1
            kind = getattr(pcm, "dtype", type(pcm).__name__)
            _warn.warning(
                "amd-bad-frame", "AMD dropped a frame (%s)", kind, call_id=self.call_id
            )
            return []
        self._remember(pcm)

        events: list[AmdEvent] = []
        pos, n = 0, pcm.shape[0]
        while pos < n and not self.done:
            take = min(n - pos, FRAME - self._frame_fill, CHUNK - self._chunk_fill)
            piece = pcm[pos : pos + take]
            self._frame[self._frame_fill : self._frame_fill + take] = piece
            self._chunk[self._chunk_fill : self._chunk_fill + take] = piece
            self._frame_fill += take
            self._chunk_fill += take
            pos += take
            if self._frame_fill == FRAME:
                events.extend(self._on_frame())
            if self._chunk_fill == CHUNK:
                events.extend(self._on_chunk())
        return events

    def finish(self) -> list[AmdEvent]:
        """The stream ended; settle the verdict with what was heard."""
        if self.done:
            return []
        events: list[AmdEvent] = []
        if self._batcher is not None:
            events.extend(self._batcher.flush(self))
        now = self.stream_ms
        tones = self._beeps.finish()
        for beep in self._sit.feed(tones, now + 1000, False):
            events.extend(self._machine.beep(beep, now))
        edge = self._segments.close(now)
        if edge is not None:
            events.extend(self._machine.speech_end(edge[1]))
        events.extend(self._machine.finish(now))
        return events

    def llm_answer(self, label: Label | None) -> list[AmdEvent]:
        """The LLM check's answer (None when it failed)."""
        return self._machine.llm_answer(label, self._vad_ms())

    def greeting_audio(self) -> NDArray[np.int16]:
        """Inbound audio from just before the first speech, for the LLM check."""
        if self._keep is None:
            return np.zeros(0, np.int16)
        first = self._machine.first_speech_ms or 0
        start = max(0, (first - _LEAD_IN_MS) * SAMPLES_PER_MS)
        return self._keep[start : self._kept].copy()

    # Steps.

    def _remember(self, pcm: NDArray[np.int16]) -> None:
        if self._keep is None or self._kept >= self._keep.shape[0]:
            return
        take = min(pcm.shape[0], self._keep.shape[0] - self._kept)
        self._keep[self._kept : self._kept + take] = pcm[:take]
        self._kept += take

    def _on_frame(self) -> list[AmdEvent]:
        self._frame_fill = 0
        tones = self._beeps.feed(self._frame)
        self._frames_done += 1
        now = self._frames_done * FRAME // SAMPLES_PER_MS
        active = self._beeps.active_onset_ms is not None
        events: list[AmdEvent] = []
        for beep in self._sit.feed(tones, now, active):
            events.extend(self._machine.beep(beep, now))
        if self._sit.detected_at_ms is not None and not self._machine.done:
            events.extend(self._machine.sit(now))
        if self._batcher is None:
            # Inline, the VAD is at most one chunk behind: let deadlines fall
            # on 20 ms frames rather than 32 ms chunks.
            events.extend(self._machine.advance(now))
        return events

    def _on_chunk(self) -> list[AmdEvent]:
        self._chunk_fill = 0
        silent = is_silent(self._chunk)
        if self.settings.noise_margin_db > 0:
            power = float(np.dot(self._chunk, self._chunk.astype(np.float64)))
            level = 10.0 * math.log10(power / CHUNK + 1.0)
            gain = self._gate.gain(level)
            # The model still runs on gated chunks: skipping them would leave
            # its state behind, which cost 1.5-4 points of accuracy.
            self._levels.append(level)
            if gain > 1.0 and not silent:
                lifted = self._chunk.astype(np.float32) * gain
                np.clip(lifted, -32768.0, 32767.0, out=lifted)
                self._chunk[:] = lifted
        if self._batcher is not None and (self._in_flight or not silent):
            # Order matters for the model state: queue behind chunks in flight.
            self._in_flight += 1
            self._batcher.submit(self, self._chunk.copy(), silent)
            return []
        if silent:
            self.stream.skip(self._chunk)
            return self._on_probability(0.0)
        assert self._vad is not None
        prob = float(self._vad.run_batch([self.stream], [self._chunk])[0])
        return self._on_probability(prob)

    def _on_probability(self, prob: float) -> list[AmdEvent]:
        """One chunk's speech probability, in stream order."""
        start = self._chunks_done * CHUNK // SAMPLES_PER_MS
        self._chunks_done += 1
        end = self._chunks_done * CHUNK // SAMPLES_PER_MS
        events: list[AmdEvent] = []
        if self._levels:
            prob = self._gate.judge(prob, self._levels.popleft())
        edge = self._segments.feed(prob, start, end)
        if edge is not None:
            kind, at = edge
            if kind == "start":
                events.extend(self._machine.speech_start(at))
            else:
                events.extend(self._machine.speech_end(at))
        events.extend(self._machine.advance(end))
        return events

    def _vad_ms(self) -> int:
        return self._chunks_done * CHUNK // SAMPLES_PER_MS

    def deliver(self, prob: float) -> list[AmdEvent]:
        """The batcher's answer for this pipeline's oldest chunk in flight."""
        self._in_flight -= 1
        if self.done:
            return []
        return self._on_probability(prob)


class VadBatcherLike(Protocol):
    """What a pipeline needs from a batcher (implemented in batch.py)."""

    def submit(
        self, pipeline: AmdPipeline, chunk: NDArray[np.int16], silent: bool
    ) -> None: ...

    def flush(self, pipeline: AmdPipeline) -> list[AmdEvent]: ...
