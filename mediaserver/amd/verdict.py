"""The verdict state machine: speech segments, beeps and SIT in, events out.

Sans-I/O and clocked by stream time only. The pipeline (or a test) calls
`speech_start`/`speech_end` with segment edges, `beep`, `sit`, and
`advance(now_ms)` as audio is consumed; each returns the events it caused.

Rules, in the order they are checked on each `advance`:

* a beep is a machine whose greeting ended (``beep``); a SIT is a network
  announcement (``sit_tone``, always ended with ``end_call``);
* one utterance (segments joined across pauses shorter than the human
  silence) of `long_greeting_ms` or more is a machine greeting
  (``long_greeting``), never before `initial_check_delay_ms`;
* a shorter utterance followed by `human_silence_ms` of silence
  (`human_long_silence_ms` once the utterance passed `short_utterance_ms`)
  is a person (``short_answer``), with no initial delay;
* nothing heard by `no_audio_ms` is ``no_audio``;
* at `decision_deadline_ms` a verdict is forced from what was heard;
* when the stream ends first, an utterance of `announcement_min_ms` or more
  is a machine (``announcement_ended``: short network messages that hang
  up), otherwise ``unknown`` (or ``no_audio`` if nothing was heard).

Segments shorter than `min_speech_ms` (clicks, line blips) are ignored, and
so are segments shorter than `resume_min_ms` that follow a pause of
`human_silence_ms` or more (noise bursts on a busy line), which meanwhile
neither extend the utterance nor let its silence count.

Confidence is the share of verdicts of that cause that were right in
`benchmarks/amd_accuracy.py` (its calibration table), scaled within a cause
by the margin past the rule's threshold.

After a machine verdict: `StopSpeaking` (when enabled), then exactly one
`FinalAction`: ``end_call`` at once, or ``leave_message`` when the greeting
ends (`GreetingEnded` by beep, by `greeting_end_silence_ms` of silence, or by
the `leave_message_cap_ms` cap). Listening goes on until then.

LLM verification (``settings.llm_verification``): a length-based machine
verdict is provisional. The machine emits `LlmCheckWanted` (with the
provisional verdict and the stream time the answer is due) and holds the
verdict, `StopSpeaking` and `FinalAction`. The glue fetches the greeting
audio from the pipeline, asks the model, and calls `llm_answer(label)`:
HUMAN turns the verdict to human, MACHINE confirms it (``fused``), None
(the check failed) keeps the acoustic verdict. With no answer by
``min(at + llm_deadline_ms, decision_deadline_ms)`` of stream time the
acoustic verdict stands (logged). A beep or SIT meanwhile settles it.
"""

from __future__ import annotations

import enum
import logging

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
    Timings,
    Verdict,
)
from mediaserver.amd.settings import AmdSettings

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    LISTENING = "listening"
    LLM_WAIT = "llm_wait"
    GREETING = "greeting"  # machine verdict out, waiting for the greeting's end
    DONE = "done"


class VerdictMachine:
    def __init__(self, settings: AmdSettings, call_id: str = "") -> None:
        self.settings = settings
        self._log_extra = {"call_id": call_id}
        self.phase = Phase.LISTENING
        self.verdict: Verdict | None = None
        self.llm_request: LlmCheckWanted | None = None
        self._now = 0
        self._in_speech = False
        self._seg_start = 0
        self._first_speech: int | None = None
        self._utt_start: int | None = None  # onset of the current utterance
        self._last_end: int | None = None
        self._speech_ms = 0
        self._longest = 0
        self._segments = 0
        self._beep: Beep | None = None
        self._before_blip: tuple[int | None, int | None] = (None, None)
        self._resuming = False  # the current segment may still be a blip

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def first_speech_ms(self) -> int | None:
        return self._first_speech

    # Inputs.

    def speech_start(self, at_ms: int) -> list[AmdEvent]:
        events = self.advance(at_ms)
        self._before_blip = (self._utt_start, self._first_speech)
        # A pause shorter than the silence that would have meant "human"
        # keeps the utterance going.
        gap = self._needed_silence(self._utterance_ms())
        pause = None if self._last_end is None else at_ms - self._last_end
        if pause is None or pause >= gap:
            self._utt_start = at_ms
        # After a pause that would have meant "human" for a short answer, new
        # speech joins the utterance only once it lasts `resume_min_ms`: a
        # noise burst then is not the greeting going on.
        self._resuming = (
            pause is not None and self.settings.human_silence_ms <= pause < gap
        )
        if self._first_speech is None:
            self._first_speech = at_ms
        self._in_speech = True
        self._seg_start = at_ms
        return events

    def _undo_blip(self) -> None:
        self._utt_start, self._first_speech = self._before_blip

    def speech_end(self, at_ms: int) -> list[AmdEvent]:
        shortest = self.settings.min_speech_ms
        if self._resuming:
            shortest = max(shortest, self.settings.resume_min_ms)
        if self._in_speech and at_ms - self._seg_start < shortest:
            # A click or line blip: forget it, as if the silence went on.
            self._in_speech = False
            self._undo_blip()
            return self.advance(at_ms)
        if self._in_speech:
            length = max(0, at_ms - self._seg_start)
            self._speech_ms += length
            self._longest = max(self._longest, length)
            self._segments += 1
            self._in_speech = False
            self._last_end = at_ms
        return self.advance(at_ms)

    def beep(self, beep: Beep, now_ms: int) -> list[AmdEvent]:
        events = self.advance(now_ms)
        if self.done:
            return events
        self._beep = beep
        events.append(beep)
        if self.phase in (Phase.LISTENING, Phase.LLM_WAIT):
            verdict = self._make(Label.MACHINE, "beep", 0.97, MachineState.BEEP)
            events.extend(self._machine(verdict))
        elif self.phase is Phase.GREETING:
            events.extend(self._greeting_ended("beep"))
        return events

    def sit(self, at_ms: int) -> list[AmdEvent]:
        events = self.advance(at_ms)
        if self.phase in (Phase.LISTENING, Phase.LLM_WAIT):
            verdict = self._make(Label.MACHINE, "sit_tone", 0.99, MachineState.GREETING)
            events.extend(self._machine(verdict))
        return events

    def llm_answer(self, label: Label | None, now_ms: int) -> list[AmdEvent]:
        """The LLM's opinion on the provisional machine verdict (None: failed)."""
        events = self.advance(now_ms)
        if self.phase is not Phase.LLM_WAIT or self.llm_request is None:
            return events
        acoustic = self.llm_request.provisional
        if label is Label.HUMAN:
            verdict = self._make(Label.HUMAN, "llm_human", 0.85, source="llm")
            return [*events, *self._final(verdict)]
        if label is Label.MACHINE:
            confidence = max(acoustic.confidence, 0.95)
            verdict = self._make(
                Label.MACHINE, acoustic.cause, confidence, self._state(), "fused"
            )
            return [*events, *self._machine(verdict, verified=True)]
        log.info(
            "LLM check gave no answer; keeping the acoustic verdict",
            extra=self._log_extra,
        )
        return [*events, *self._machine(self._restamp(acoustic), verified=True)]

    def advance(self, now_ms: int) -> list[AmdEvent]:
        """Stream time moved on to `now_ms`: apply the time-based rules."""
        self._now = max(self._now, now_ms)
        if self.phase is Phase.LISTENING:
            return self._listen()
        if self.phase is Phase.LLM_WAIT:
            return self._llm_wait()
        if self.phase is Phase.GREETING:
            return self._await_greeting_end()
        return []

    def finish(self, now_ms: int) -> list[AmdEvent]:
        """The stream ended: settle whatever is still open."""
        events = self.advance(now_ms)
        if self.phase is Phase.LISTENING:
            # The far end hung up right after talking for a second or more,
            # leaving no pause for a reply: a short network announcement,
            # even before the initial check delay.
            if self._utterance_ms() >= self.settings.announcement_min_ms:
                verdict = self._make(
                    Label.MACHINE, "announcement_ended", 0.85, MachineState.SILENCE
                )
                events.extend(self._machine(verdict, verified=True))
            elif self._first_speech is None:
                verdict = self._make(Label.NO_AUDIO, "stream_ended_silent", 0.6)
                events.extend(self._final(verdict))
            else:
                verdict = self._make(Label.UNKNOWN, "stream_ended", 0.3)
                events.extend(self._final(verdict))
        elif self.phase is Phase.LLM_WAIT and self.llm_request is not None:
            acoustic = self._restamp(self.llm_request.provisional)
            events.extend(self._machine(acoustic, verified=True))
        if self.phase is Phase.GREETING:
            events.extend(self._greeting_ended("stream_end"))
        return events

    # Rules.

    def _listen(self) -> list[AmdEvent]:
        s, now = self.settings, self._now
        utterance = self._utterance_ms()
        quiet = self._quiet_ms()

        if utterance >= s.long_greeting_ms and now >= s.initial_check_delay_ms:
            extra = (utterance - s.long_greeting_ms) / 1500
            confidence = 0.9 + 0.08 * min(1.0, extra)
            verdict = self._make(
                Label.MACHINE, "long_greeting", confidence, self._state()
            )
            return self._machine(verdict)

        needed = self._needed_silence(utterance)
        if quiet is not None and quiet >= needed and utterance < s.long_greeting_ms:
            confidence = 0.97 - 0.1 * utterance / s.long_greeting_ms
            return self._final(self._make(Label.HUMAN, "short_answer", confidence))

        if self._first_speech is None and now >= min(
            s.no_audio_ms, s.decision_deadline_ms
        ):
            return self._final(self._make(Label.NO_AUDIO, "silence", 0.8))

        if now >= s.decision_deadline_ms:
            return self._deadline()
        return []

    def _deadline(self) -> list[AmdEvent]:
        # Speech is on and still short: a person is the safer guess.
        if self._first_speech is None:
            return self._final(self._make(Label.NO_AUDIO, "deadline_silence", 0.8))
        if self._utterance_ms() >= self.settings.long_greeting_ms:
            verdict = self._make(Label.MACHINE, "deadline_long", 0.7, self._state())
            return self._machine(verdict)
        return self._final(self._make(Label.HUMAN, "deadline_short_speech", 0.55))

    def _llm_wait(self) -> list[AmdEvent]:
        request = self.llm_request
        if request is None or self._now < request.deadline_ms:
            return []
        log.info(
            "LLM check not answered by %d ms; acoustic verdict stands",
            request.deadline_ms,
            extra=self._log_extra,
        )
        return self._machine(self._restamp(request.provisional), verified=True)

    def _await_greeting_end(self) -> list[AmdEvent]:
        s = self.settings
        if self._now >= s.leave_message_cap_ms:
            return self._greeting_ended("cap")
        quiet = self._quiet_ms()
        if quiet is not None and quiet >= s.greeting_end_silence_ms:
            return self._greeting_ended("silence")
        return []

    # Outputs.

    def _machine(self, verdict: Verdict, *, verified: bool = False) -> list[AmdEvent]:
        s = self.settings
        conclusive = verdict.cause in ("beep", "sit_tone")
        if s.llm_verification and not verified and not conclusive:
            deadline = min(verdict.at_ms + s.llm_deadline_ms, s.decision_deadline_ms)
            self.llm_request = LlmCheckWanted(
                at_ms=verdict.at_ms, deadline_ms=deadline, provisional=verdict
            )
            self.phase = Phase.LLM_WAIT
            return [self.llm_request]

        self.verdict = verdict
        log.info(
            "AMD verdict machine (%s) at %d ms",
            verdict.cause,
            verdict.at_ms,
            extra=self._log_extra,
        )
        events: list[AmdEvent] = [verdict]
        if s.stop_speaking:
            events.append(StopSpeaking(at_ms=self._now, reason=verdict.cause))
        if verdict.cause == "sit_tone" or s.final_action is FinalActionKind.END_CALL:
            events.append(self._final_action(FinalActionKind.END_CALL, verdict.cause))
            return events
        if verdict.machine_state is MachineState.BEEP:
            events.extend(self._greeting_ended("beep"))
            return events
        self.phase = Phase.GREETING
        events.extend(self._await_greeting_end())
        return events

    def _final(self, verdict: Verdict) -> list[AmdEvent]:
        self.verdict = verdict
        self.phase = Phase.DONE
        log.info(
            "AMD verdict %s (%s) at %d ms",
            verdict.label,
            verdict.cause,
            verdict.at_ms,
            extra=self._log_extra,
        )
        return [verdict]

    def _greeting_ended(self, by: str) -> list[AmdEvent]:
        ended = GreetingEnded(at_ms=self._now, by=by)
        return [
            ended,
            self._final_action(FinalActionKind.LEAVE_MESSAGE, f"greeting_{by}"),
        ]

    def _final_action(self, kind: FinalActionKind, reason: str) -> FinalAction:
        self.phase = Phase.DONE
        return FinalAction(action=kind, at_ms=self._now, reason=reason)

    # Measurements.

    def _utterance_ms(self) -> int:
        if self._utt_start is None:
            return 0
        end = self._last_end or self._now
        if self._in_speech and not (
            self._resuming and self._now - self._seg_start < self.settings.resume_min_ms
        ):
            end = self._now
        return max(0, end - self._utt_start)

    def _needed_silence(self, utterance_ms: int) -> int:
        s = self.settings
        if utterance_ms >= s.short_utterance_ms:
            return s.human_long_silence_ms
        return s.human_silence_ms

    def _quiet_ms(self) -> int | None:
        if self._in_speech or self._last_end is None:
            return None
        return self._now - self._last_end

    def _state(self) -> MachineState:
        quiet = self._quiet_ms()
        if quiet is not None and quiet >= self.settings.greeting_end_silence_ms:
            return MachineState.SILENCE
        return MachineState.GREETING

    def _timings(self) -> Timings:
        current = self._now - self._seg_start if self._in_speech else 0
        return Timings(
            first_speech_ms=self._first_speech,
            speech_ms=self._speech_ms + current,
            longest_segment_ms=max(self._longest, current),
            segments=self._segments + (1 if self._in_speech else 0),
            last_speech_end_ms=self._last_end,
            silence_after_ms=self._quiet_ms() or 0,
            beep_onset_ms=self._beep.onset_ms if self._beep else None,
        )

    def _make(
        self,
        label: Label,
        cause: str,
        confidence: float,
        state: MachineState | None = None,
        source: str = "acoustic",
    ) -> Verdict:
        return Verdict(
            label=label,
            machine_state=state,
            confidence=round(confidence, 3),
            cause=cause,
            at_ms=self._now,
            timings=self._timings(),
            source=source,
        )

    def _restamp(self, verdict: Verdict) -> Verdict:
        """The held acoustic verdict, issued now with what was heard since."""
        return self._make(
            verdict.label, verdict.cause, verdict.confidence, self._state()
        )
