"""Speech segments from VAD probabilities, and the noise-floor gate."""

from __future__ import annotations

from mediaserver.amd.segments import NoiseFloor, SpeechSegmenter


def edges(probs: list[float]) -> list[tuple[str, int]]:
    seg = SpeechSegmenter(0.5, min_silence_chunks=2)
    out = []
    for i, p in enumerate(probs):
        edge = seg.feed(p, i * 32, (i + 1) * 32)
        if edge:
            out.append(edge)
    closing = seg.close(len(probs) * 32)
    return out + ([closing] if closing else [])


def test_hysteresis_and_minimum_silence() -> None:
    # 0.4 stays inside speech (above 0.35); one quiet chunk does not end it.
    assert edges([0, 0.9, 0.4, 0.1, 0.8, 0.1, 0.1, 0]) == [("start", 32), ("end", 160)]


def test_open_segment_is_closed_at_stream_end() -> None:
    assert edges([0.9, 0.9, 0.9]) == [("start", 0), ("end", 96)]


def test_noise_floor_lets_speech_over_a_steady_background() -> None:
    gate = NoiseFloor(9.0, window_chunks=40)
    background = [gate.admits(50.0 + (i % 3)) for i in range(40)]
    assert not any(background)
    assert gate.admits(65.0)
    assert not gate.admits(55.0)


def test_noise_floor_forgets_a_quiet_past() -> None:
    gate = NoiseFloor(9.0, window_chunks=10)
    for _ in range(10):
        gate.admits(20.0)
    assert gate.admits(50.0)
    for _ in range(10):
        gate.admits(55.0)
    assert gate.floor_db == 55.0
    assert not gate.admits(58.0)
