"""The streaming beep detector on generated tones and corpus files."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from mediaserver.amd.beep import FRAME, BeepDetector
from mediaserver.amd.events import Beep
from mediaserver.corpus import CorpusEntry, read_wav
from tests.amd.conftest import dual, silence, tone


def detect(pcm: NDArray[np.int16]) -> list[Beep]:
    detector = BeepDetector()
    found: list[Beep] = []
    usable = pcm.shape[0] // FRAME * FRAME
    for i in range(0, usable, FRAME):
        found.extend(detector.feed(pcm[i : i + FRAME]))
    return found + detector.finish()


@pytest.mark.parametrize("freq", [300, 440, 700, 950, 1000, 1400, 1800, 2200, 2500])
@pytest.mark.parametrize("duration", [80, 120, 250, 500, 1000])
def test_single_tones_are_beeps(freq: int, duration: int) -> None:
    found = detect(np.concatenate([silence(300), tone(freq, duration), silence(300)]))
    assert len(found) == 1
    beep = found[0]
    assert abs(beep.frequency_hz - freq) < 3
    assert abs(beep.onset_ms - 300) <= 2
    assert abs(beep.duration_ms - duration) <= 3


@pytest.mark.parametrize("duration", [20, 40, 60, 70])
def test_short_blips_are_not_beeps(duration: int) -> None:
    assert (
        detect(np.concatenate([silence(300), tone(1000, duration), silence(300)])) == []
    )


@pytest.mark.parametrize("freq", [150, 250, 2800, 3200])
def test_out_of_band_tones_are_not_beeps(freq: int) -> None:
    assert detect(np.concatenate([silence(200), tone(freq, 500), silence(200)])) == []


@pytest.mark.parametrize(
    ("f1", "f2"),
    [
        (440, 480),
        (480, 620),
        (350, 440),
        (697, 1209),
        (770, 1336),
        (852, 1477),
        (941, 1633),
    ],
)
def test_dual_tones_are_not_beeps(f1: int, f2: int) -> None:
    # Ringback, busy, dial tone and DTMF: each held far longer than a beep.
    assert (
        detect(np.concatenate([silence(200), dual(f1, f2, 2000), silence(200)])) == []
    )


@pytest.mark.parametrize("offset_ms", [0.125, 3, 7.5, 10, 13.375, 19.875])
def test_beep_split_across_frames_keeps_its_onset(offset_ms: float) -> None:
    # The onset lands inside a frame; the answer is counted by samples.
    lead = 400 + offset_ms
    found = detect(
        np.concatenate([silence(lead), tone(850, 90, phase=0.7), silence(200)])
    )
    assert len(found) == 1
    assert abs(found[0].onset_ms - lead) <= 2
    assert abs(found[0].duration_ms - 90) <= 3


def test_tone_just_under_the_minimum_straddling_frames_is_rejected() -> None:
    # 75 ms spread over five frames must not count as five frames' worth.
    assert detect(np.concatenate([silence(410), tone(850, 75), silence(200)])) == []


def test_corpus_beeps_found_at_their_manifest_onset(corpus: list[CorpusEntry]) -> None:
    with_beep = [
        e for e in corpus if e.label == "machine" and e.beep_onset_s is not None
    ]
    assert len(with_beep) >= 8
    for e in with_beep:
        found = detect(read_wav(e.path))
        onsets = [b.onset_ms for b in found]
        assert any(abs(o - e.beep_onset_s * 1000) <= 30 for o in onsets), (
            e.name,
            onsets,
        )
        # Nothing in the spoken greeting itself passes for a beep.
        assert all(o >= e.beep_onset_s * 1000 - 30 for o in onsets), (e.name, onsets)


def test_corpus_dual_tones_speech_and_noise_have_no_beep(
    corpus: list[CorpusEntry],
) -> None:
    checked = 0
    for e in corpus:
        dual_tone = any(k in e.name for k in ("dtmf", "baresip_busy", "ringback"))
        if dual_tone or e.label in ("speech", "noise", "human"):
            assert detect(read_wav(e.path)) == [], e.name
            checked += 1
    assert checked > 50


def test_one_lost_packet_does_not_split_a_beep() -> None:
    beep = tone(1000, 400)
    beep[8 * 160 : 9 * 160] = 0  # frame 9 of the beep was lost on the way
    found = detect(np.concatenate([silence(300), beep, silence(300)]))
    assert len(found) == 1
    assert abs(found[0].duration_ms - 400) <= 3


def test_two_separate_beeps_stay_two() -> None:
    pcm = np.concatenate([silence(300), tone(1000, 200), silence(100), tone(1000, 200)])
    found = detect(np.concatenate([pcm, silence(300)]))
    assert [b.duration_ms for b in found] == [200, 200]


def test_beep_with_noise_jittered_frequency_stays_one_beep() -> None:
    # Over 10 dB of office noise each frame's frequency estimate wanders by
    # several hertz; a tone that really wanders that much is still one beep.
    rate, phase, pieces = 8000, 0.0, []
    for k in range(50):
        f = 640.0 + (6.0, -6.0, 0.0, 5.0, -5.0)[k % 5]
        t = np.arange(FRAME) / rate
        pieces.append(np.sin(phase + 2 * np.pi * f * t))
        phase += 2 * np.pi * f * FRAME / rate
        pieces[-1] += 0.07 * np.sin(2 * np.pi * 1900 * t + k)  # noise-like residual
    wobble = (np.concatenate(pieces) * 8000).astype(np.int16)
    found = detect(np.concatenate([silence(500), wobble, silence(500)]))
    assert len(found) == 1
    assert abs(found[0].duration_ms - 1000) <= 20
