"""The per-call pipeline on corpus audio, inline and batched."""

from __future__ import annotations

import numpy as np
import pytest

from mediaserver.amd.batch import VadBatcher
from mediaserver.amd.events import (
    AmdEvent,
    Beep,
    FinalAction,
    FinalActionKind,
    Label,
    LlmCheckWanted,
    Verdict,
)
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.amd.settings import AmdSettings
from mediaserver.amd.vad import SileroVad
from mediaserver.corpus import CorpusEntry, read_wav
from tests.amd.conftest import entry, play, silence, tone


def verdict(events: list[AmdEvent]) -> Verdict:
    verdicts = [e for e in events if isinstance(e, Verdict)]
    assert len(verdicts) == 1, verdicts
    return verdicts[0]


def test_machine_files_are_machines(vad: SileroVad, corpus: list[CorpusEntry]) -> None:
    machines = [e for e in corpus if e.label == "machine"]
    assert len(machines) >= 15
    for e in machines:
        events = play(AmdPipeline(AmdSettings(), vad=vad), read_wav(e.path))
        assert verdict(events).label is Label.MACHINE, e.name
        assert len([x for x in events if isinstance(x, FinalAction)]) == 1, e.name


def test_human_files_are_humans(vad: SileroVad, corpus: list[CorpusEntry]) -> None:
    humans = [e for e in corpus if e.label == "human"]
    assert len(humans) >= 5
    for e in humans:
        events = play(AmdPipeline(AmdSettings(), vad=vad), read_wav(e.path))
        v = verdict(events)
        assert v.label is Label.HUMAN, e.name
        assert not any(isinstance(x, FinalAction) for x in events), e.name


def test_voicemail_beep_cues_leave_message_after_it(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    beeping = [e for e in corpus if e.label == "machine" and e.beep_onset_s is not None]
    for e in beeping:
        events = play(AmdPipeline(AmdSettings(), vad=vad), read_wav(e.path))
        beeps = [x for x in events if isinstance(x, Beep)]
        (final,) = [x for x in events if isinstance(x, FinalAction)]
        assert final.action is FinalActionKind.LEAVE_MESSAGE, e.name
        assert beeps, e.name
        assert abs(beeps[-1].onset_ms - e.beep_onset_s * 1000) <= 30, e.name
        assert beeps[-1].end_ms <= final.at_ms <= beeps[-1].end_ms + 150, e.name


def test_sit_announcement_ends_the_call(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    e = entry(corpus, "sit_ic_then_asterisk_en_ss-noservice.wav")
    events = play(AmdPipeline(AmdSettings(), vad=vad), read_wav(e.path))
    assert verdict(events).cause == "sit_tone"
    (final,) = [x for x in events if isinstance(x, FinalAction)]
    assert final.action is FinalActionKind.END_CALL


def test_push_size_does_not_change_the_result(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    pcm = read_wav(entry(corpus, "asterisk_it_vm_busy_ext2000_beep.wav").path)
    base = play(AmdPipeline(AmdSettings(), vad=vad), pcm, step=160)
    for step in (37, 256, 1000):
        assert play(AmdPipeline(AmdSettings(), vad=vad), pcm, step=step) == base


def test_batched_calls_match_inline(vad: SileroVad, corpus: list[CorpusEntry]) -> None:
    names = [
        "asterisk_en_vm_unavailable_ext1234_beep.wav",
        "asterisk_fr_hello_padded.wav",
        "pyannote_phone_hello_speakerA.wav",
        "asterisk_en_tt-allbusy.wav",
        "synthetic_personal_greeting_3_beep1400.wav",
    ]
    signals = [read_wav(entry(corpus, n).path) for n in names]
    inline = [verdict(play(AmdPipeline(AmdSettings(), vad=vad), s)) for s in signals]

    batcher = VadBatcher(vad)
    calls = [AmdPipeline(AmdSettings(), batcher=batcher) for _ in signals]
    got: dict[int, list[AmdEvent]] = {i: [] for i in range(len(calls))}
    longest = max(s.shape[0] for s in signals)
    for pos in range(0, longest, 160):
        for i, (call, pcm) in enumerate(zip(calls, signals, strict=True)):
            if not call.done and pos < pcm.shape[0]:
                got[i] += call.push(pcm[pos : pos + 160])
        if pos % 480 == 0:  # a loop tick every 60 ms
            for call, events in batcher.run():
                got[calls.index(call)] += events
    for i, call in enumerate(calls):
        got[i] += call.finish()

    for i, want in enumerate(inline):
        v = verdict(got[i])
        assert v.label is want.label, names[i]
        assert v.cause == want.cause, names[i]
        assert abs(v.at_ms - want.at_ms) <= 32, names[i]
    assert batcher.rounds > 0
    assert batcher.chunks_run > 0
    assert batcher.pending == 0


def test_disabled_pipeline_does_nothing(corpus: list[CorpusEntry]) -> None:
    pipeline = AmdPipeline(AmdSettings(enabled=False))
    pcm = read_wav(entry(corpus, "asterisk_en_vm_busy_ext2000_beep.wav").path)
    assert pipeline.done
    assert play(pipeline, pcm) == []


def test_bad_frames_are_dropped_and_the_call_goes_on(vad: SileroVad) -> None:
    pipeline = AmdPipeline(AmdSettings(), vad=vad)
    assert pipeline.push(np.zeros(160, np.float32)) == []  # type: ignore[arg-type]
    assert pipeline.push(np.zeros((2, 80), np.int16)) == []
    assert pipeline.push(b"\x00" * 320) == []  # type: ignore[arg-type]
    assert pipeline.dropped_frames == 3
    assert pipeline.stream_ms == 0
    events = play(
        pipeline, np.concatenate([silence(500), tone(1000, 300), silence(500)])
    )
    assert verdict(events).cause == "beep"


def test_done_pipeline_ignores_more_audio(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    pipeline = AmdPipeline(AmdSettings(), vad=vad)
    play(pipeline, read_wav(entry(corpus, "asterisk_en_hello_padded.wav").path))
    assert pipeline.done
    assert pipeline.push(np.full(160, 1000, np.int16)) == []
    assert pipeline.finish() == []


def test_llm_check_gets_the_greeting_and_can_overrule(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    settings = AmdSettings(llm_verification=True)
    pipeline = AmdPipeline(settings, vad=vad)
    pcm = read_wav(entry(corpus, "asterisk_en_ss-noservice.wav").path)
    wanted: list[LlmCheckWanted] = []
    for i in range(0, pcm.shape[0], 160):
        events = pipeline.push(pcm[i : i + 160])
        wanted += [e for e in events if isinstance(e, LlmCheckWanted)]
        assert not any(isinstance(e, Verdict) for e in events)
        if wanted:
            break
    assert pipeline.llm_request is wanted[0]
    audio = pipeline.greeting_audio()
    assert audio.dtype == np.int16
    assert 8000 <= audio.shape[0] <= pipeline.stream_ms * 8
    events = pipeline.llm_answer(Label.HUMAN)
    assert verdict(events).label is Label.HUMAN
    assert pipeline.done
    assert pipeline.llm_request is None


def test_llm_silence_falls_back_on_stream_time(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    settings = AmdSettings(llm_verification=True, llm_deadline_ms=800)
    pcm = read_wav(entry(corpus, "asterisk_en_ss-noservice.wav").path)
    events = play(AmdPipeline(settings, vad=vad), pcm)
    wanted = next(e for e in events if isinstance(e, LlmCheckWanted))
    v = verdict(events)
    assert v.label is Label.MACHINE
    assert v.source == "acoustic"
    assert v.at_ms - wanted.at_ms == pytest.approx(800, abs=32)


def test_hello_over_steady_line_noise_is_human(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    rng = np.random.default_rng(3)
    hello = read_wav(entry(corpus, "asterisk_en_hello_padded.wav").path)
    noise = rng.normal(0, 300, hello.shape[0] + 8000)
    pcm = np.concatenate([np.zeros(8000), hello.astype(np.float64)]) + noise
    events = play(AmdPipeline(AmdSettings(), vad=vad), pcm.astype(np.int16))
    assert verdict(events).label is Label.HUMAN


def test_batched_finish_flushes_pending_chunks(
    vad: SileroVad, corpus: list[CorpusEntry]
) -> None:
    # The stream ends between ticks: its queued chunks still count.
    pcm = read_wav(entry(corpus, "asterisk_fr_hello_padded.wav").path)
    batcher = VadBatcher(vad)
    pipeline = AmdPipeline(AmdSettings(), batcher=batcher)
    events = pipeline.push(pcm)
    assert not any(isinstance(e, Verdict) for e in events)
    assert batcher.pending > 0
    v = verdict(events + pipeline.finish())
    assert v.label is Label.HUMAN
    assert batcher.pending == 0


def test_batcher_drops_chunks_of_finished_calls(vad: SileroVad) -> None:
    batcher = VadBatcher(vad)
    done = AmdPipeline(AmdSettings(), batcher=batcher)
    live = AmdPipeline(AmdSettings(), batcher=batcher)
    beep = np.concatenate([silence(200), tone(1000, 300), silence(300)])
    speech = (np.random.default_rng(5).normal(0, 2000, beep.shape[0])).astype(np.int16)
    events = done.push(beep)
    assert verdict(events).cause == "beep"
    assert done.done
    live.push(speech)
    results = batcher.run()
    assert all(p is live for p, _ in results)
    assert batcher.pending == 0
    assert batcher.chunks_run == beep.shape[0] // 256
