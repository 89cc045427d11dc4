"""Silero VAD through onnxruntime: model checks, probabilities, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediaserver.amd.model import default_model_path
from mediaserver.amd.vad import CHUNK, SileroVad, VadStream, is_silent
from mediaserver.corpus import CorpusEntry, read_wav
from mediaserver.errors import ModelError
from tests.amd.conftest import entry


def probabilities(vad: SileroVad, pcm: np.ndarray) -> np.ndarray:
    stream = VadStream()
    out = []
    for i in range(0, pcm.shape[0] - CHUNK + 1, CHUNK):
        out.append(vad.probability(stream, pcm[i : i + CHUNK]))
    return np.array(out)


def test_missing_model_names_file_and_fetch_command(tmp_path: Path) -> None:
    missing = tmp_path / "silero_vad.onnx"
    with pytest.raises(ModelError) as caught:
        SileroVad(missing)
    assert str(missing) in str(caught.value)
    assert "make setup" in str(caught.value)


def test_corrupt_model_names_file_and_fetch_command(tmp_path: Path) -> None:
    bad = tmp_path / "silero_vad.onnx"
    data = bytearray(default_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError) as caught:
        SileroVad(bad)
    assert "corrupt" in str(caught.value)
    assert str(bad) in str(caught.value)
    assert "make setup" in str(caught.value)


def test_speech_is_speech(vad: SileroVad, corpus: list[CorpusEntry]) -> None:
    for name in ("cmu_arctic_slt_a0007.wav", "asterisk_en_ss-noservice.wav"):
        probs = probabilities(vad, read_wav(entry(corpus, name).path))
        assert (probs >= 0.5).mean() > 0.5, name


def test_silence_and_noise_are_not_speech(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    assert probabilities(vad, np.zeros(8000, np.int16)).max() < 0.1
    for name in (
        "mediastreamer2_white_noise.wav",
        "speechcommands_noise_exercise_bike_30s.wav",
    ):
        probs = probabilities(vad, read_wav(entry(corpus, name).path)[:40000])
        assert (probs >= 0.5).mean() < 0.05, name


def test_batch_matches_one_stream_at_a_time(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    # Each stream keeps its own state and context inside a shared batch.
    names = [
        "cmu_arctic_aew_a0001.wav",
        "asterisk_fr_hello_padded.wav",
        "pocketsphinx_numbers.wav",
    ]
    signals = [read_wav(entry(corpus, n).path)[: CHUNK * 40] for n in names]
    alone = [probabilities(vad, s) for s in signals]

    streams = [VadStream() for _ in signals]
    batched = np.zeros((len(signals), 40))
    for k in range(40):
        chunks = [s[k * CHUNK : (k + 1) * CHUNK] for s in signals]
        batched[:, k] = vad.run_batch(streams, chunks)
    for got, want in zip(batched, alone, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert not np.allclose(batched[0], batched[1], atol=0.05)


def test_quiet_chunks_are_skipped() -> None:
    assert is_silent(np.zeros(CHUNK, np.int16))
    assert is_silent(np.full(CHUNK, 40, np.int16))
    assert not is_silent(np.full(CHUNK, 400, np.int16))
