"""AMD for the media server: one pipeline per call, inline or batched VAD.

`AmdEngine` owns the process's Silero session. Inline (the default), each
call's `push` runs the VAD itself. Batched, every call's complete chunks
wait for one `VadBatcher.run()` per tick of `AmdEngine.run` (an owned task
of the media server), which costs about a third per chunk; the events it
returns are dispatched to the sessions that own the pipelines. The LLM
check, when a campaign enables it, goes through the `LlmCheck` callable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.batch import VadBatcher
from mediaserver.amd.events import AmdEvent, Label
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.amd.settings import AmdSettings
from mediaserver.amd.vad import SileroVad

log = logging.getLogger(__name__)

# greeting audio, seconds left before the acoustic verdict stands -> answer
LlmCheck = Callable[[NDArray[np.int16], float], Awaitable[Label | None]]


class AmdListener(Protocol):
    async def amd_events(self, events: list[AmdEvent]) -> None: ...


class AmdEngine:
    """Builds per-call pipelines over one shared model session."""

    def __init__(
        self,
        vad: SileroVad | None = None,
        *,
        batched: bool = False,
        tick_s: float = 0.02,
        llm_check: LlmCheck | None = None,
    ) -> None:
        self.vad = vad or SileroVad()
        self.batcher = VadBatcher(self.vad) if batched else None
        self.llm_check = llm_check
        self._tick_s = tick_s
        self._listeners: dict[AmdPipeline, AmdListener] = {}
        self.ticks = 0

    def warm_up(self) -> None:
        """Run the kernels once so that no call pays their compile time."""
        noise = np.random.default_rng(7).integers(-3000, 3000, 16000)
        pipeline = AmdPipeline(AmdSettings(), vad=self.vad)
        pipeline.push(noise.astype(np.int16))
        pipeline.finish()

    @property
    def batched(self) -> bool:
        return self.batcher is not None

    def pipeline(self, settings: AmdSettings, listener: AmdListener) -> AmdPipeline:
        if self.batcher is None:
            return AmdPipeline(settings, vad=self.vad)
        pipeline = AmdPipeline(settings, batcher=self.batcher)
        self._listeners[pipeline] = listener
        return pipeline

    def release(self, pipeline: AmdPipeline) -> None:
        """The call no longer listens (done or ended)."""
        self._listeners.pop(pipeline, None)

    async def run(self) -> None:
        """Batched mode's tick: one batch per `tick_s`, events to their calls."""
        batcher = self.batcher
        if batcher is None:
            return
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self._tick_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > self._tick_s:
                next_at = loop.time()  # fell behind: do not burst to catch up
            self.ticks += 1
            if not batcher.pending:
                continue
            for pipeline, events in batcher.run():
                listener = self._listeners.get(pipeline)
                if listener is not None:
                    try:
                        await listener.amd_events(events)
                    except Exception:
                        log.exception("AMD event delivery failed")
