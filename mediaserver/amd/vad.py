"""Silero VAD at 8 kHz through onnxruntime, with state kept per stream.

At 8 kHz the model takes 256 new samples per chunk (32 ms) plus the last
32 samples of the previous chunk as context: input ``[batch, 288]`` float32
in -1..1, state ``[2, batch, 128]``, ``sr`` an int64 scalar. It returns the
speech probability ``[batch, 1]`` and the next state.

`SileroVad` owns one single-threaded session. `VadStream` holds one
stream's state and context. `SileroVad.run_batch` runs many streams' chunks
in one ``session.run``, which costs about a third per chunk of running them
one by one on this machine's CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from mediaserver.amd.model import verified_model_path
from mediaserver.errors import ModelError

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
CHUNK = 256  # new samples per inference at 8 kHz
CONTEXT = 32  # samples of the previous chunk the model sees again
CHUNK_MS = CHUNK * 1000 // SAMPLE_RATE  # 32
_STATE_SHAPE = (2, 128)
# Chunks whose peak stays below this (about -54 dBFS) are treated as silence
# without running the model: digital silence and idle lines cost nothing.
SILENT_PEAK = 64


class VadStream:
    """One stream's recurrent state and the context the next chunk needs."""

    __slots__ = ("context", "state")

    def __init__(self) -> None:
        self.state: NDArray[np.float32] = np.zeros(_STATE_SHAPE, np.float32)
        self.context: NDArray[np.float32] = np.zeros(CONTEXT, np.float32)

    def skip(self, chunk: NDArray[np.int16]) -> None:
        """Account for a chunk not run through the model (treated as silence)."""
        self.context = chunk[-CONTEXT:].astype(np.float32) * (1.0 / 32768.0)

    def reset(self) -> None:
        self.state = np.zeros(_STATE_SHAPE, np.float32)
        self.context = np.zeros(CONTEXT, np.float32)


def is_silent(chunk: NDArray[np.int16]) -> bool:
    """True when the chunk is too quiet to be worth a model run."""
    return int(chunk.min()) > -SILENT_PEAK and int(chunk.max()) < SILENT_PEAK


class SileroVad:
    """The Silero model in one single-threaded onnxruntime session."""

    def __init__(self, path: Path | None = None) -> None:
        model = verified_model_path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load the VAD model at {model}: {exc}") from exc
        self._sr = np.array(SAMPLE_RATE, np.int64)

    def raw_run(
        self, x: NDArray[np.float32], state: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """One inference on prepared inputs: x [n, 288], state [2, n, 128]."""
        out, new_state = self._session.run(
            None, {"input": x, "state": state, "sr": self._sr}
        )
        return out, new_state

    def probability(self, stream: VadStream, chunk: NDArray[np.int16]) -> float:
        """Speech probability of one 256-sample chunk of one stream."""
        return float(self.run_batch([stream], [chunk])[0])

    def run_batch(
        self, streams: Sequence[VadStream], chunks: Sequence[NDArray[np.int16]]
    ) -> NDArray[np.float32]:
        """Run one chunk of each stream in one inference; returns probabilities."""
        n = len(streams)
        x = np.empty((n, CONTEXT + CHUNK), np.float32)
        x[:, :CONTEXT] = np.stack([s.context for s in streams])
        np.multiply(
            np.stack(chunks), 1.0 / 32768.0, out=x[:, CONTEXT:], casting="unsafe"
        )
        state = np.stack([s.state for s in streams], axis=1)

        out, new_state = self.raw_run(x, state)

        # Each stream keeps views of its next state and of its chunk's tail;
        # the batch arrays are fresh every run, so nothing is shared later.
        for i, stream in enumerate(streams):
            stream.state = new_state[:, i, :]
            stream.context = x[i, -CONTEXT:]
        return out[:, 0]
