"""Fixtures for the AMD tests: one real Silero session, the corpus, generators."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from mediaserver.amd.events import AmdEvent
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.amd.vad import SileroVad
from mediaserver.corpus import CorpusEntry, default_corpus_dir, load_manifest

RATE = 8000


@pytest.fixture(scope="session")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="session")
def corpus() -> list[CorpusEntry]:
    folder = default_corpus_dir()
    if not (folder / "MANIFEST.tsv").is_file():
        pytest.skip(f"no corpus at {folder} (set CALLWRIGHT_CORPUS)")
    return load_manifest(folder)


def entry(corpus: list[CorpusEntry], name: str) -> CorpusEntry:
    return next(e for e in corpus if e.path.name == name)


def tone(
    freq: float, ms: float, dbfs: float = -12.0, phase: float = 0.0
) -> NDArray[np.int16]:
    t = np.arange(int(ms * RATE / 1000)) / RATE
    return (np.sin(2 * np.pi * freq * t + phase) * 32767 * 10 ** (dbfs / 20)).astype(
        np.int16
    )


def dual(f1: float, f2: float, ms: float, dbfs: float = -12.0) -> NDArray[np.int16]:
    t = np.arange(int(ms * RATE / 1000)) / RATE
    x = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
    return (x * 0.5 * 32767 * 10 ** (dbfs / 20)).astype(np.int16)


def silence(ms: float) -> NDArray[np.int16]:
    return np.zeros(int(ms * RATE / 1000), np.int16)


def play(
    pipeline: AmdPipeline, pcm: NDArray[np.int16], step: int = 160
) -> list[AmdEvent]:
    """Push audio as fast as the pipeline takes it, then finish."""
    events: list[AmdEvent] = []
    for i in range(0, pcm.shape[0], step):
        events.extend(pipeline.push(pcm[i : i + step]))
        if pipeline.done:
            return events
    return events + pipeline.finish()
