"""What the AMD pipeline tells the call session.

Every time is in milliseconds of stream time: audio received since the
call's media started (the answer), counted by samples, not wall clock, so
that a replay gives the same numbers.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Label(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    NO_AUDIO = "no_audio"
    UNKNOWN = "unknown"


class MachineState(StrEnum):
    """Where a machine's greeting stood when the verdict was given."""

    GREETING = "greeting"  # still playing
    BEEP = "beep"  # ended with a beep
    SILENCE = "silence"  # ended with silence, no beep heard


class FinalActionKind(StrEnum):
    END_CALL = "end_call"
    LEAVE_MESSAGE = "leave_message"


class Timings(msgspec.Struct, frozen=True, kw_only=True):
    """The measurements behind a verdict."""

    first_speech_ms: int | None = None  # onset of the first speech segment
    speech_ms: int = 0  # total speech heard so far
    longest_segment_ms: int = 0
    segments: int = 0
    last_speech_end_ms: int | None = None
    silence_after_ms: int = 0  # silence since the last speech ended
    beep_onset_ms: int | None = None


class Verdict(msgspec.Struct, frozen=True, kw_only=True, tag="verdict"):
    label: Label
    machine_state: MachineState | None = None
    confidence: float
    cause: str  # short machine-readable reason, e.g. "long_greeting", "sit_tone"
    at_ms: int  # stream time the verdict was reached
    timings: Timings
    source: str = "acoustic"  # "acoustic", "llm" or "fused"


class StopSpeaking(msgspec.Struct, frozen=True, kw_only=True, tag="stop_speaking"):
    at_ms: int
    reason: str


class Beep(msgspec.Struct, frozen=True, kw_only=True, tag="beep"):
    onset_ms: int
    end_ms: int
    frequency_hz: float
    duration_ms: int


class GreetingEnded(msgspec.Struct, frozen=True, kw_only=True, tag="greeting_ended"):
    at_ms: int
    by: str  # "beep", "silence", "cap" (waited as long as allowed), "stream_end"


class FinalAction(msgspec.Struct, frozen=True, kw_only=True, tag="final_action"):
    action: FinalActionKind
    at_ms: int
    reason: str


class LlmCheckWanted(msgspec.Struct, frozen=True, kw_only=True, tag="llm_check_wanted"):
    """The acoustics say machine; ask the LLM now and answer by `deadline_ms`.

    The glue takes the greeting audio from the pipeline and later calls
    `AmdPipeline.llm_answer`; see mediaserver/amd/verdict.py.
    """

    at_ms: int
    deadline_ms: int  # stream time after which the acoustic verdict stands
    provisional: Verdict


AmdEvent = Verdict | StopSpeaking | Beep | GreetingEnded | FinalAction | LlmCheckWanted
