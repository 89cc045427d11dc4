"""Special information tones ahead of network announcements."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.beep import FRAME, BeepDetector
from mediaserver.amd.events import Beep
from mediaserver.amd.sit import SitDetector
from mediaserver.corpus import CorpusEntry, read_wav
from tests.amd.conftest import entry, silence, tone


def run(pcm: NDArray[np.int16]) -> tuple[int | None, list[Beep]]:
    beeps, sit = BeepDetector(), SitDetector()
    released: list[Beep] = []
    n = pcm.shape[0] // FRAME
    for i in range(n):
        tones = beeps.feed(pcm[i * FRAME : (i + 1) * FRAME])
        now = (i + 1) * FRAME // 8
        released.extend(sit.feed(tones, now, beeps.active_onset_ms is not None))
    released.extend(sit.feed(beeps.finish(), n * FRAME // 8 + 1000, False))
    return sit.detected_at_ms, released


def sit_tones(
    first: float, second: float, durations: tuple[int, int, int]
) -> NDArray[np.int16]:
    a, b, c = durations
    return np.concatenate([tone(first, a), tone(second, b), tone(1776.7, c)])


def test_generated_sit_patterns_are_found_and_not_beeps() -> None:
    for first, second in ((913.8, 1370.6), (985.2, 1428.5), (913.8, 1428.5)):
        for durations in ((274, 274, 380), (380, 380, 380), (274, 380, 380)):
            pcm = np.concatenate(
                [silence(300), sit_tones(first, second, durations), silence(500)]
            )
            at, beeps = run(pcm)
            assert at is not None, (first, second, durations)
            assert beeps == []


def test_corpus_sit_is_found(corpus: list[CorpusEntry]) -> None:
    for name in (
        "sit_intercept_wikimedia.wav",
        "sit_ic_then_asterisk_en_ss-noservice.wav",
    ):
        at, beeps = run(read_wav(entry(corpus, name).path))
        assert at is not None, name
        assert 1000 <= at <= 1500, name
        assert beeps == [], name


def test_lone_sit_frequency_tone_is_released_as_a_beep() -> None:
    at, beeps = run(np.concatenate([silence(300), tone(950, 300), silence(600)]))
    assert at is None
    assert [round(b.frequency_hz) for b in beeps] == [950]


def test_broken_pattern_releases_its_tones() -> None:
    # First two SIT tones, then a wrong third: all are ordinary tones.
    pcm = np.concatenate(
        [
            silence(300),
            tone(913.8, 274),
            tone(1370.6, 274),
            tone(600, 300),
            silence(500),
        ]
    )
    at, beeps = run(pcm)
    assert at is None
    assert [round(b.frequency_hz, -1) for b in beeps] == [910, 1370, 600]


def test_rising_tones_too_slow_are_not_sit() -> None:
    pcm = np.concatenate(
        [
            silence(300),
            tone(913.8, 274),
            silence(400),
            tone(1370.6, 274),
            silence(400),
            tone(1776.7, 380),
            silence(500),
        ]
    )
    at, beeps = run(pcm)
    assert at is None
    assert len(beeps) == 3
