"""The level gate around the VAD: noise floor, background talker, input gain."""

from __future__ import annotations

import numpy as np

from benchmarks.corpus_variants import g711_round_trip
from mediaserver.amd.events import Label
from mediaserver.amd.levels import LevelGate, RecentPeak
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.amd.settings import AmdSettings
from mediaserver.amd.vad import SileroVad
from mediaserver.corpus import CorpusEntry, read_wav
from tests.amd.conftest import entry, play, silence
from tests.amd.test_pipeline import verdict


def gate(max_gain: float = 1.0) -> LevelGate:
    return LevelGate(
        margin_db=9.0, window_chunks=40, background_db=16.5, max_gain=max_gain
    )


def feed(g: LevelGate, chunks: list[tuple[float, float]]) -> list[float]:
    out = []
    for level, prob in chunks:
        g.gain(level)
        out.append(g.judge(prob, level))
    return out


def test_recent_peak_forgets_after_its_window() -> None:
    peak = RecentPeak(3)
    for level in (50.0, 70.0, 40.0, 45.0):
        peak.add(level)
    assert peak.level_db == 70.0
    peak.add(41.0)
    peak.add(42.0)
    assert peak.level_db == 45.0


def test_speech_well_below_the_talker_is_background() -> None:
    g = gate()
    feed(g, [(20.0, 0.0)] * 10)
    talker = feed(g, [(75.0, 0.99)] * 10)
    assert talker == [0.99] * 10
    # A TV 20 dB down: its first chunks pass as the talker's fading tail,
    # then it stops counting although the model calls it speech.
    tv = feed(g, [(55.0, 0.99)] * 12)
    assert tv[:6] == [0.99] * 6
    assert tv[6:] == [0.0] * 6
    # Speech near the talker's level counts again at once.
    assert feed(g, [(72.0, 0.95)]) == [0.95]


def test_floor_stays_put_through_a_long_greeting() -> None:
    g = gate()
    feed(g, [(20.0, 0.0)] * 5)
    # 3 s of speech: far longer than the floor's window, yet the floor is
    # still the silence before it, so the quiet end of a word still counts.
    feed(g, [(70.0 + (i % 4), 0.99) for i in range(94)])
    assert g.floor_db == 20.0
    assert feed(g, [(58.0, 0.9)]) == [0.9]


def test_noisy_line_admits_only_confident_speech_near_the_floor() -> None:
    g = gate()
    feed(g, [(56.0 + (i % 2), 0.05) for i in range(30)])
    # Loudest chunk 12 dB over the floor: the margin shrinks to 6 dB.
    feed(g, [(68.0, 0.99)])
    assert feed(g, [(63.0, 0.95)]) == [0.95]
    assert feed(g, [(63.0, 0.6)]) == [0.0]  # the model is not sure enough
    assert feed(g, [(59.0, 0.99)]) == [0.0]  # inside the noise


def test_gain_lifts_a_quiet_voice_on_a_quiet_line_only() -> None:
    quiet = gate(max_gain=4.0)
    for _ in range(10):
        quiet.gain(15.0)
    assert quiet.gain(45.0) == 4.0  # capped by max_gain
    loud = gate(max_gain=4.0)
    for _ in range(10):
        loud.gain(15.0)
    assert loud.gain(72.0) == 1.0  # already loud
    hiss = gate(max_gain=4.0)
    for _ in range(10):
        hiss.gain(35.0)
    # The floor may rise to 36 dB at most: a 1 dB lift.
    assert 1.0 < hiss.gain(45.0) < 1.2


def test_hello_over_a_tv_in_the_room_is_human(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    hello = read_wav(entry(corpus, "asterisk_en_hello_padded.wav").path)[4400:10000]
    tv = read_wav(
        entry(corpus, "librivox_sense_and_sensibility_01_austen_64kb-0870.wav").path
    )
    dry = np.concatenate([silence(500), hello, silence(3000)]).astype(np.float64)
    bed = tv[: dry.shape[0]].astype(np.float64)
    bed *= np.sqrt((hello.astype(np.float64) ** 2).mean() / (bed**2).mean()) / 10
    pcm = np.clip(dry + bed, -32768, 32767).astype(np.int16)
    v = verdict(play(AmdPipeline(AmdSettings(), vad=vad), pcm))
    assert v.label is Label.HUMAN
    # Without the background test the TV keeps the "utterance" going.
    off = AmdSettings(background_speech_db=200.0)
    assert verdict(play(AmdPipeline(off, vad=vad), pcm)).label is Label.MACHINE


def test_quiet_handset_after_g711_is_heard(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    pcm = g711_round_trip(
        read_wav(entry(corpus, "pyannote_phone_hello_speakerA.wav").path)
    )
    v = verdict(play(AmdPipeline(AmdSettings(), vad=vad), pcm))
    assert v.label is Label.HUMAN
    unlifted = AmdSettings(vad_max_gain=1.0)
    assert verdict(play(AmdPipeline(unlifted, vad=vad), pcm)).label is Label.NO_AUDIO


def test_new_speech_far_below_the_talker_cannot_start() -> None:
    g = gate()
    feed(g, [(20.0, 0.0)] * 10 + [(70.0, 0.99)] * 10 + [(20.0, 0.0)] * 5)
    # 15 dB down, after a pause: inside the background bar, yet too quiet to
    # open an utterance; 10 dB down it may.
    assert feed(g, [(55.0, 0.99)] * 3) == [0.0] * 3
    feed(g, [(20.0, 0.0)] * 5)
    assert feed(g, [(60.0, 0.99)] * 3) == [0.99] * 3
    # Once open, the same 15 dB-down speech goes on counting.
    assert feed(g, [(55.0, 0.99)] * 3) == [0.99] * 3
