"""Batched VAD: many calls' chunks in one onnxruntime run per loop tick.

Contract: one `VadBatcher` per event loop, wrapping the process's
`SileroVad`. Each call's pipeline is built with ``batcher=``; its `push`
hands complete 32 ms chunks to the batcher instead of running the model.
Once per loop tick (e.g. after reading every ready socket, or on a 20 ms
timer) the glue calls ``run()``: one inference per round over the oldest
pending chunk of every call (a call with two pending chunks takes two
rounds, because its state must advance in order), then each pipeline gets
its probabilities and the returned ``[(pipeline, events)]`` lists every
call that has new events. Chunks of pipelines that are `done` are dropped.
``run()`` is synchronous and costs about one model run per round; the glue
may call it in a worker thread if it is not to block the loop (onnxruntime
and numba release the GIL), as long as no `push` runs at the same time.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.events import AmdEvent
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.amd.vad import SileroVad, VadStream


class VadBatcher:
    def __init__(self, vad: SileroVad) -> None:
        self.vad = vad
        self._pending: dict[AmdPipeline, deque[tuple[NDArray[np.int16], bool]]] = {}
        self.rounds = 0
        self.chunks_run = 0
        self.last_run_s = 0.0  # wall time of the last run(), for lag metrics

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._pending.values())

    def submit(
        self, pipeline: AmdPipeline, chunk: NDArray[np.int16], silent: bool
    ) -> None:
        self._pending.setdefault(pipeline, deque()).append((chunk, silent))

    def run(self) -> list[tuple[AmdPipeline, list[AmdEvent]]]:
        """Run every pending chunk; returns each call's new events."""
        started = time.perf_counter()
        out: dict[AmdPipeline, list[AmdEvent]] = {}
        while self._pending:
            for pipeline, events in self._round(list(self._pending)):
                if events:
                    out.setdefault(pipeline, []).extend(events)
        self.last_run_s = time.perf_counter() - started
        return list(out.items())

    def flush(self, pipeline: AmdPipeline) -> list[AmdEvent]:
        """Run one pipeline's pending chunks now (its stream is ending)."""
        events: list[AmdEvent] = []
        while pipeline in self._pending:
            for _, new in self._round([pipeline]):
                events.extend(new)
        return events

    def _round(
        self, pipelines: list[AmdPipeline]
    ) -> list[tuple[AmdPipeline, list[AmdEvent]]]:
        # Take the oldest chunk of each call; silent ones skip the model.
        live: list[AmdPipeline] = []
        streams: list[VadStream] = []
        chunks: list[NDArray[np.int16]] = []
        results: list[tuple[AmdPipeline, list[AmdEvent]]] = []
        for pipeline in pipelines:
            queue = self._pending[pipeline]
            chunk, silent = queue.popleft()
            if not queue:
                del self._pending[pipeline]
            if pipeline.done:
                self._pending.pop(pipeline, None)
                continue
            if silent:
                pipeline.stream.skip(chunk)
                results.append((pipeline, pipeline.deliver(0.0)))
                continue
            live.append(pipeline)
            streams.append(pipeline.stream)
            chunks.append(chunk)

        if live:
            probs = self.vad.run_batch(streams, chunks)
            self.rounds += 1
            self.chunks_run += len(live)
            for pipeline, prob in zip(live, probs, strict=True):
                results.append((pipeline, pipeline.deliver(float(prob))))
        return results
