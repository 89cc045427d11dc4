"""Harder versions of the labelled corpus, built in memory (never written out).

Each `Case` carries its label and the reference times the benchmark scores
latency against: where the first utterance ends (energy-based, measured on
the clean audio and shifted with it) and where the voicemail beep ends.

Sets:
  corpus      the machine/human files as they are
  noisy20/10  office ambience added at 20 and 10 dB SNR (against the speech)
  g711        band-limited to 300-3400 Hz and sent through mu-law and back
  loss2/5     2 % and 5 % of 20 ms frames lost (zeroed, no concealment)
  late        1.5-3 s of line noise before the greeting or answer
  hard        cut-and-joined cases: "Hello? ... Hello?", pick up and wait,
              3-4 word answers, answers over music and over a TV, 2 s
              personal greetings with a beep after a pause, greetings that
              pause mid-sentence
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

from mediaserver.amd.beep import BeepDetector
from mediaserver.codecs.g711 import pcm_to_ulaw, ulaw_to_pcm
from mediaserver.corpus import CorpusEntry, load_manifest, read_wav

RATE = 8000
Pcm = NDArray[np.int16]


class Case(msgspec.Struct, kw_only=True):
    name: str
    set: str
    label: str  # "machine" or "human"
    pcm: Pcm
    utterance_end_ms: int | None = None  # end of the first utterance (humans)
    beep_end_ms: int | None = None  # end of the voicemail beep, if any


def ms(n: float) -> int:
    return int(n * RATE / 1000)


def silence(duration_ms: int) -> Pcm:
    return np.zeros(ms(duration_ms), np.int16)


def tone(freq: float, duration_ms: int, dbfs: float = -12.0) -> Pcm:
    t = np.arange(ms(duration_ms)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 32767 * 10 ** (dbfs / 20)).astype(np.int16)


def first_utterance_end_ms(pcm: Pcm) -> int | None:
    """End of the first run of loud 20 ms frames, pauses < 300 ms bridged."""
    n = pcm.shape[0] // 160
    if n == 0:
        return None
    frames = pcm[: n * 160].astype(np.float64).reshape(n, 160)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-9) - 90.3
    loud = db > max(-50.0, float(db.max()) - 35.0)
    end = None
    for i in np.flatnonzero(loud):
        if end is not None and i * 20 - end >= 300:
            break
        end = (int(i) + 1) * 20
    return end


def _onset_ms(pcm: Pcm) -> int:
    """Where the voice starts: the first 20 ms frame within 25 dB of the peak."""
    n = pcm.shape[0] // 160
    frames = pcm[: n * 160].astype(np.float64).reshape(n, 160)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-9)
    return int(np.flatnonzero(db > db.max() - 25.0)[0]) * 20


def _mix(a: Pcm, b: Pcm) -> Pcm:
    n = max(a.shape[0], b.shape[0])
    out = np.zeros(n, np.float64)
    out[: a.shape[0]] += a
    out[: b.shape[0]] += b
    return np.clip(out, -32768, 32767).astype(np.int16)


def _loop(noise: Pcm, n: int, offset: int = 0) -> Pcm:
    reps = -(-(n + offset) // noise.shape[0])
    return np.tile(noise, reps)[offset : offset + n]


def _speech_rms(pcm: Pcm) -> float:
    x = pcm.astype(np.float64)
    loud = x[np.abs(x) > 0.05 * np.abs(x).max(initial=1.0)]
    return float(np.sqrt((loud**2).mean())) if loud.size else 1.0


def add_noise(pcm: Pcm, noise: Pcm, snr_db: float, offset: int = 0) -> Pcm:
    bed = _loop(noise, pcm.shape[0], offset).astype(np.float64)
    gain = _speech_rms(pcm) / (np.sqrt((bed**2).mean()) + 1e-9) / 10 ** (snr_db / 20)
    return _mix(pcm, (bed * gain).astype(np.int16))


def band_limit(pcm: Pcm, low: float = 300.0, high: float = 3400.0) -> Pcm:
    spectrum = np.fft.rfft(pcm.astype(np.float64))
    freqs = np.fft.rfftfreq(pcm.shape[0], 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    out = np.fft.irfft(spectrum, pcm.shape[0])
    return np.clip(out, -32768, 32767).astype(np.int16)


def g711_round_trip(pcm: Pcm) -> Pcm:
    return ulaw_to_pcm(pcm_to_ulaw(band_limit(pcm)))


def lose_frames(pcm: Pcm, rate: float, rng: np.random.Generator) -> Pcm:
    out = pcm.copy()
    for i in range(0, out.shape[0], 160):
        if rng.random() < rate:
            out[i : i + 160] = 0
    return out


class Sources:
    """The corpus pieces the variants are made of."""

    def __init__(self, folder: Path | None = None) -> None:
        self.entries = load_manifest(folder)
        self._by_name = {e.path.name: e for e in self.entries}

    def wav(self, name: str) -> Pcm:
        return read_wav(self._by_name[name].path)

    def cut(self, name: str, start_ms: int, end_ms: int) -> Pcm:
        return self.wav(name)[ms(start_ms) : ms(end_ms)]

    def labelled(self) -> list[CorpusEntry]:
        return [e for e in self.entries if e.label in ("machine", "human")]

    def line_noise(self) -> Pcm:
        # The real call's line before anyone speaks (a short blip cut out).
        name = "pyannote_phone_conversation_30s.wav"
        return np.concatenate([self.cut(name, 0, 2300), self.cut(name, 2700, 6600)])

    def office(self) -> Pcm:
        return self.wav("pipecat_office_ambience_30s.wav")

    def music(self) -> Pcm:
        return self.wav("asterisk_moh_macroform-cold_day_30s.wav")


def _beep_end(pcm: Pcm, onset_s: float | None) -> int | None:
    if onset_s is None:
        return None
    detector = BeepDetector()
    beeps = [
        b
        for i in range(0, pcm.shape[0] - 159, 160)
        for b in detector.feed(pcm[i : i + 160])
    ]
    beeps += detector.finish()
    near = [b for b in beeps if abs(b.onset_ms - onset_s * 1000) < 100]
    return near[0].end_ms if near else int(onset_s * 1000) + 400


def corpus_cases(src: Sources) -> list[Case]:
    cases = []
    for e in src.labelled():
        pcm = read_wav(e.path)
        cases.append(
            Case(
                name=e.path.name,
                set="corpus",
                label=e.label,
                pcm=pcm,
                utterance_end_ms=first_utterance_end_ms(pcm)
                if e.label == "human"
                else None,
                beep_end_ms=_beep_end(pcm, e.beep_onset_s),
            )
        )
    return cases


def _derive(case: Case, set_name: str, pcm: Pcm, shift_ms: int = 0) -> Case:
    def moved(t: int | None) -> int | None:
        return None if t is None else t + shift_ms

    return Case(
        name=case.name,
        set=set_name,
        label=case.label,
        pcm=pcm,
        utterance_end_ms=moved(case.utterance_end_ms),
        beep_end_ms=moved(case.beep_end_ms),
    )


def degraded_cases(src: Sources, base: list[Case], seed: int = 7) -> Iterator[Case]:
    rng = np.random.default_rng(seed)
    office, line = src.office(), src.line_noise()
    for case in base:
        for snr in (20, 10):
            offset = int(rng.integers(0, office.shape[0]))
            yield _derive(case, f"noisy{snr}", add_noise(case.pcm, office, snr, offset))
        yield _derive(case, "g711", g711_round_trip(case.pcm))
        for pct in (2, 5):
            yield _derive(case, f"loss{pct}", lose_frames(case.pcm, pct / 100, rng))
        delay = int(rng.integers(1500, 3001)) // 20 * 20
        lead = _loop(line, ms(delay), int(rng.integers(0, line.shape[0])))
        yield _derive(case, "late", np.concatenate([lead, case.pcm]), delay)


def _human(name: str, parts: list[Pcm], utterance_end_ms: int) -> Case:
    return Case(
        name=name,
        set="hard",
        label="human",
        pcm=np.concatenate(parts),
        utterance_end_ms=utterance_end_ms,
    )


def hard_cases(src: Sources) -> list[Case]:
    """Real answers and greetings that timing rules tuned on easy files miss."""
    line = src.line_noise()
    hellos = {
        "en": src.cut("asterisk_en_hello_padded.wav", 550, 1250),
        "fr": src.cut("asterisk_fr_hello_padded.wav", 450, 1050),
        "it": src.cut("asterisk_it_hello_padded.wav", 550, 950),
        "phone": src.cut("pyannote_phone_hello_speakerA.wav", 1450, 2050),
    }
    answers = {  # three or four words, about a second
        "hi_who_is_this": src.cut("synthetic_human_hi_who_is_this.wav", 450, 1800),
        "phrase": src.cut("amfm_decompy_sample.wav", 0, 891),
        "digits": src.cut("hyke_ivr_digits_1298636292_2.wav", 1700, 3000),
        "words": src.cut("hyke_ivr_digits_1299842139_3.wav", 6550, 7830),
    }
    cases: list[Case] = []

    def after(lead: Pcm, piece: Pcm) -> int:
        end = first_utterance_end_ms(piece) or 0
        return int(lead.shape[0]) * 1000 // RATE + end

    for key, hello in hellos.items():
        # A phone line is never digitally silent; the studio prompts are.
        gap = (lambda n: _loop(line, ms(n))) if key == "phone" else silence
        lead = gap(300)
        cases.append(
            _human(
                f"hello_hello_{key}",
                [lead, hello, gap(1000), hello, gap(2500)],
                after(lead, hello),
            )
        )
        lead = _loop(line, ms(1500 + 250 * len(key)))
        cases.append(
            _human(
                f"pickup_wait_{key}",
                [lead, hello, _loop(line, ms(2500))],
                after(lead, hello),
            )
        )
    for key, answer in answers.items():
        lead = silence(400)
        cases.append(
            _human(
                f"short_answer_{key}",
                [lead, answer, silence(2500)],
                after(lead, answer),
            )
        )

    # Answers over music and over a TV talking in the room.
    music, tv = (
        src.music(),
        src.wav("librivox_sense_and_sensibility_01_austen_64kb-0870.wav"),
    )
    for key in ("en", "phone"):
        hello = hellos[key]
        dry = np.concatenate([silence(500), hello, silence(3000)])
        end = after(silence(500), hello)
        gain = _speech_rms(hello) / _speech_rms(music) / 10 ** (12 / 20)
        bed = (_loop(music, dry.shape[0]) * gain).astype(np.int16)
        cases.append(
            Case(
                name=f"over_music_{key}",
                set="hard",
                label="human",
                pcm=_mix(dry, bed),
                utterance_end_ms=end,
            )
        )
        gain = _speech_rms(hello) / _speech_rms(tv) / 10 ** (20 / 20)
        bed = (_loop(tv, dry.shape[0]) * gain).astype(np.int16)
        cases.append(
            Case(
                name=f"over_tv_{key}",
                set="hard",
                label="human",
                pcm=_mix(dry, bed),
                utterance_end_ms=end,
            )
        )

    # Personal greetings: about two seconds, then a pause, then the beep.
    voices = {
        "slt": src.cut("cmu_arctic_slt_a0007.wav", 0, 2100),
        "aew": src.cut("cmu_arctic_aew_a0001.wav", 160, 2200),
        "axb": src.cut("cmu_arctic_axb_a0004.wav", 200, 2300),
    }
    for key, voice in voices.items():
        parts = [silence(400), voice, silence(700)]
        onset = sum(p.shape[0] for p in parts) * 1000 // RATE
        parts += [tone(1000, 300), silence(2000)]
        cases.append(
            Case(
                name=f"personal_2s_{key}",
                set="hard",
                label="machine",
                pcm=np.concatenate(parts),
                beep_end_ms=onset + 300,
            )
        )

    # Long greetings that pause mid-sentence (first phrase, a pause, the rest).
    long_voices = {
        "austen": ("librivox_sense_and_sensibility_01_austen_64kb-0920.wav", 0),
        "slt": ("cmu_arctic_slt_a0007.wav", 0),
        "digits": ("hyke_ivr_digits_1298636066_2.wav", 2320),
    }
    for key, (name, start) in long_voices.items():
        # Cut from where the voice starts: the first phrase is `first` ms of speech.
        voice_at = start + _onset_ms(src.cut(name, start, start + 4000))
        for first, pause in ((1200, 700), (900, 600), (600, 600)):
            head = src.cut(name, voice_at, voice_at + first)
            rest = src.cut(name, voice_at + first, voice_at + 3800)
            parts = [silence(300), head, silence(pause), rest, silence(800)]
            onset = sum(p.shape[0] for p in parts) * 1000 // RATE
            parts += [tone(700, 400), silence(1500)]
            cases.append(
                Case(
                    name=f"pausing_{key}_{first}_{pause}",
                    set="hard",
                    label="machine",
                    pcm=np.concatenate(parts),
                    beep_end_ms=onset + 400,
                )
            )
    return cases


def all_cases(folder: Path | None = None) -> Iterator[Case]:
    src = Sources(folder)
    base = corpus_cases(src)
    yield from base
    yield from degraded_cases(src, base)
    yield from hard_cases(src)
