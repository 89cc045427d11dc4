"""The verdict state machine on scripted timelines (no audio, no VAD)."""

from __future__ import annotations

from collections.abc import Sequence

from mediaserver.amd.events import (
    AmdEvent,
    Beep,
    FinalAction,
    FinalActionKind,
    GreetingEnded,
    Label,
    LlmCheckWanted,
    MachineState,
    StopSpeaking,
    Verdict,
)
from mediaserver.amd.settings import AmdSettings
from mediaserver.amd.verdict import VerdictMachine

Step = tuple[str, int] | tuple[str, Beep]


def beep(onset: int, duration: int = 400) -> Beep:
    return Beep(
        onset_ms=onset,
        end_ms=onset + duration,
        frequency_hz=700.0,
        duration_ms=duration,
    )


def script(
    steps: Sequence[Step],
    until: int,
    settings: AmdSettings | None = None,
    finish: bool = False,
) -> tuple[VerdictMachine, list[AmdEvent]]:
    """Speech edges ("S"/"E" at ms), beeps and SIT, with time ticking by 20 ms."""
    machine = VerdictMachine(settings or AmdSettings())
    events: list[AmdEvent] = []
    pending = sorted(
        steps, key=lambda s: s[1].end_ms if isinstance(s[1], Beep) else s[1]
    )
    for now in range(0, until + 1, 20):
        while pending:
            kind, value = pending[0]
            at = value.end_ms if isinstance(value, Beep) else value
            if at > now:
                break
            pending.pop(0)
            if kind == "S":
                events += machine.speech_start(int(at))
            elif kind == "E":
                events += machine.speech_end(int(at))
            elif kind == "beep":
                assert isinstance(value, Beep)
                events += machine.beep(value, now)
            elif kind == "sit":
                events += machine.sit(now)
        events += machine.advance(now)
    if finish:
        events += machine.finish(until)
    return machine, events


def only(events: list[AmdEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def verdict_of(events: list[AmdEvent]) -> Verdict:
    verdicts = only(events, Verdict)
    assert len(verdicts) == 1, verdicts
    return verdicts[0]


def test_short_hello_then_silence_is_human_soon_after() -> None:
    machine, events = script([("S", 400), ("E", 900)], 3000)
    v = verdict_of(events)
    assert v.label is Label.HUMAN
    assert v.cause == "short_answer"
    assert v.at_ms == 900 + AmdSettings().human_silence_ms
    assert v.timings.first_speech_ms == 400
    assert v.timings.speech_ms == 500
    assert 0 < v.confidence <= 1
    assert machine.done
    assert only(events, StopSpeaking) == []
    assert only(events, FinalAction) == []


def test_human_verdict_does_not_wait_for_the_initial_check_delay() -> None:
    settings = AmdSettings(initial_check_delay_ms=4000)
    _, events = script([("S", 300), ("E", 700)], 3000, settings)
    assert verdict_of(events).at_ms == 1200


def test_hello_pause_hello_is_human_on_the_first_pause() -> None:
    _, events = script([("S", 300), ("E", 800), ("S", 1800), ("E", 2300)], 4000)
    v = verdict_of(events)
    assert v.label is Label.HUMAN
    assert v.at_ms == 1300


def test_few_words_answer_needs_the_longer_silence() -> None:
    s = AmdSettings()
    _, events = script([("S", 400), ("E", 1600)], 4000)
    v = verdict_of(events)
    assert v.label is Label.HUMAN
    assert v.at_ms == 1600 + s.human_long_silence_ms


def test_long_greeting_is_machine_at_the_initial_check_delay() -> None:
    _, events = script([("S", 300), ("E", 4000)], 6000)
    v = verdict_of(events)
    assert v.label is Label.MACHINE
    assert v.cause == "long_greeting"
    assert v.machine_state is MachineState.GREETING
    assert v.at_ms == AmdSettings().initial_check_delay_ms


def test_no_length_based_machine_call_before_the_initial_delay() -> None:
    settings = AmdSettings(initial_check_delay_ms=3000)
    _, events = script([("S", 100), ("E", 4500)], 6000, settings)
    assert verdict_of(events).at_ms == 3000


def test_greeting_pausing_mid_sentence_stays_one_utterance() -> None:
    # 1.0 s phrase, 0.6 s pause, more greeting: not a person waiting for us.
    _, events = script([("S", 300), ("E", 1300), ("S", 1900), ("E", 4000)], 6000)
    v = verdict_of(events)
    assert v.label is Label.MACHINE
    # The speech after the pause joins once it has lasted `resume_min_ms`.
    assert v.at_ms == 1900 + AmdSettings().resume_min_ms


def test_noise_burst_after_a_pause_does_not_extend_the_answer() -> None:
    # "Hi, who is this?" (1.1 s), then a 150 ms burst 700 ms later: without
    # the resume rule the burst would make one 2 s utterance, a greeting.
    steps: list[Step] = [("S", 500), ("E", 1600), ("S", 2300), ("E", 2450)]
    _, events = script(steps, 5000)
    v = verdict_of(events)
    assert v.label is Label.HUMAN
    assert v.at_ms == 2450  # the burst held the verdict, its silence did not
    assert v.timings.silence_after_ms == 850
    _, events = script(steps, 5000, AmdSettings(resume_min_ms=0))
    assert verdict_of(events).label is Label.MACHINE


def test_silence_throughout_is_no_audio() -> None:
    _, events = script([], 6000)
    v = verdict_of(events)
    assert v.label is Label.NO_AUDIO
    assert v.at_ms == AmdSettings().no_audio_ms


def test_line_blips_do_not_count_as_speech() -> None:
    _, events = script([("S", 1000), ("E", 1032), ("S", 2500), ("E", 2520)], 6000)
    assert verdict_of(events).label is Label.NO_AUDIO


def test_deadline_forces_a_verdict() -> None:
    # Speech keeps starting and stopping, never long and never quiet enough.
    steps: list[Step] = []
    for t in range(300, 6000, 700):
        steps += [("S", t), ("E", t + 400)]
    settings = AmdSettings(
        human_silence_ms=400, human_long_silence_ms=400, long_greeting_ms=10000
    )
    _, events = script(steps, 7000, settings)
    v = verdict_of(events)
    assert v.at_ms == settings.decision_deadline_ms
    assert v.cause.startswith("deadline")


def test_stream_end_without_evidence_is_unknown() -> None:
    _, events = script([("S", 300)], 700, finish=True)
    assert verdict_of(events).label is Label.UNKNOWN


def test_short_announcement_ending_the_stream_is_machine() -> None:
    _, events = script([("S", 100), ("E", 1700)], 1800, finish=True)
    v = verdict_of(events)
    assert v.label is Label.MACHINE
    assert v.cause == "announcement_ended"
    # Noise can hide an announcement's last syllables: 1.2 s still counts.
    _, events = script([("S", 100), ("E", 1300)], 1600, finish=True)
    assert verdict_of(events).cause == "announcement_ended"
    _, events = script([("S", 100), ("E", 900)], 1200, finish=True)
    assert verdict_of(events).label is Label.UNKNOWN


def test_machine_stops_speaking_and_ends_call_at_the_verdict() -> None:
    settings = AmdSettings(final_action=FinalActionKind.END_CALL)
    machine, events = script([("S", 300), ("E", 5000)], 6000, settings)
    v = verdict_of(events)
    (stop,) = only(events, StopSpeaking)
    (final,) = only(events, FinalAction)
    assert stop.at_ms == v.at_ms == final.at_ms
    assert final.action is FinalActionKind.END_CALL
    assert events.index(v) < events.index(stop) < events.index(final)
    assert machine.done


def test_stop_speaking_can_be_switched_off() -> None:
    _, events = script(
        [("S", 300), ("E", 5000)], 6000, AmdSettings(stop_speaking=False)
    )
    assert verdict_of(events).label is Label.MACHINE
    assert only(events, StopSpeaking) == []


def test_leave_message_right_after_the_beep() -> None:
    machine, events = script([("S", 300), ("E", 6000), ("beep", beep(6300))], 9000)
    (b,) = only(events, Beep)
    (ended,) = only(events, GreetingEnded)
    (final,) = only(events, FinalAction)
    assert ended.by == "beep"
    assert final.action is FinalActionKind.LEAVE_MESSAGE
    assert b.end_ms <= final.at_ms <= b.end_ms + 150
    assert verdict_of(events).at_ms == 2000
    assert machine.done


def test_leave_message_after_silence_when_no_beep() -> None:
    s = AmdSettings()
    _, events = script([("S", 300), ("E", 4000)], 9000)
    (ended,) = only(events, GreetingEnded)
    (final,) = only(events, FinalAction)
    assert ended.by == "silence"
    assert final.at_ms == 4000 + s.greeting_end_silence_ms


def test_leave_message_at_the_cap_when_the_greeting_never_ends() -> None:
    settings = AmdSettings(leave_message_cap_ms=8000)
    _, events = script([("S", 300), ("E", 20000)], 12000, settings)
    (ended,) = only(events, GreetingEnded)
    (final,) = only(events, FinalAction)
    assert ended.by == "cap"
    assert final.at_ms == 8000


def test_beep_before_any_length_rule_is_machine_with_beep() -> None:
    _, events = script([("S", 200), ("E", 900), ("beep", beep(950, 300))], 3000)
    v = verdict_of(events)
    assert v.label is Label.MACHINE
    assert v.machine_state is MachineState.BEEP
    assert v.timings.beep_onset_ms == 950
    assert len(only(events, FinalAction)) == 1


def test_sit_is_machine_and_ends_the_call_even_when_leaving_messages() -> None:
    _, events = script([("sit", 1200), ("S", 1300), ("E", 4000)], 5000)
    v = verdict_of(events)
    assert v.cause == "sit_tone"
    assert v.at_ms == 1200
    (final,) = only(events, FinalAction)
    assert final.action is FinalActionKind.END_CALL


def test_exactly_one_final_action_even_with_late_beeps() -> None:
    _, events = script(
        [("S", 300), ("E", 4000), ("beep", beep(4300)), ("beep", beep(6000))], 9000
    )
    assert len(only(events, FinalAction)) == 1


LLM = AmdSettings(llm_verification=True)


def test_llm_check_is_wanted_and_can_overrule_to_human() -> None:
    machine, events = script([("S", 300), ("E", 5000)], 2100, LLM)
    (wanted,) = only(events, LlmCheckWanted)
    assert wanted.provisional.label is Label.MACHINE
    assert wanted.deadline_ms == 2000 + LLM.llm_deadline_ms
    assert only(events, Verdict) == []
    assert only(events, StopSpeaking) == []
    answer = machine.llm_answer(Label.HUMAN, 2500)
    v = verdict_of(answer)
    assert v.label is Label.HUMAN
    assert v.source == "llm"
    assert only(answer, FinalAction) == []
    assert machine.done


def test_llm_confirmation_fuses_and_proceeds() -> None:
    machine, _events = script([("S", 300), ("E", 5000)], 2100, LLM)
    answer = machine.llm_answer(Label.MACHINE, 2600)
    v = verdict_of(answer)
    assert v.label is Label.MACHINE
    assert v.source == "fused"
    assert v.confidence >= 0.95
    assert only(answer, StopSpeaking)


def test_llm_too_late_falls_back_to_the_acoustic_verdict() -> None:
    machine, events = script([("S", 300), ("E", 6000)], 5000, LLM)
    v = verdict_of(events)
    assert v.label is Label.MACHINE
    assert v.source == "acoustic"
    assert v.at_ms == 2000 + LLM.llm_deadline_ms
    assert verdict_of(events)
    assert machine.llm_answer(Label.HUMAN, 5000) == []


def test_llm_failure_keeps_the_acoustic_verdict() -> None:
    machine, _ = script([("S", 300), ("E", 6000)], 2100, LLM)
    v = verdict_of(machine.llm_answer(None, 2400))
    assert v.label is Label.MACHINE
    assert v.source == "acoustic"


def test_beep_settles_a_pending_llm_check() -> None:
    _, events = script([("S", 300), ("E", 2200), ("beep", beep(2400, 300))], 3000, LLM)
    v = verdict_of(events)
    assert v.cause == "beep"
    assert len(only(events, FinalAction)) == 1
