"""Tunable AMD settings: the campaign's switches plus the detector's thresholds."""

from __future__ import annotations

import msgspec

from mediaserver.amd.events import FinalActionKind


class AmdSettings(msgspec.Struct, frozen=True, kw_only=True):
    # The campaign's switches (seed: "Voicemail Detection (AMD)").
    enabled: bool = True
    initial_check_delay_ms: int = 2000  # listen this long before a length-based call
    llm_verification: bool = False
    stop_speaking: bool = True
    final_action: FinalActionKind = FinalActionKind.LEAVE_MESSAGE

    # Deadlines.
    decision_deadline_ms: int = 5000  # a verdict is always out by then
    leave_message_cap_ms: int = 30000  # longest wait for a greeting to end
    llm_deadline_ms: int = 1500  # how long the LLM answer may take to join

    # Thresholds (tuned in benchmarks/, see the README's figures).
    vad_threshold: float = 0.5
    # Quiet audio is lifted up to this for the VAD, never lifting the line's
    # noise floor above about -54 dBFS (see levels.py).
    vad_max_gain: float = 4.0
    # Speech must stand this far above the noise floor (0 turns the level
    # tests of levels.py and the input gain off).
    noise_margin_db: float = 9.0
    noise_window_ms: int = 1500  # the floor is the quietest chunk this far back
    # Speech this far below the loudest recent speech is a TV or radio, not
    # the callee.
    background_speech_db: float = 16.5
    human_silence_ms: int = 500  # silence after a short utterance that means human
    # An utterance at least this long needs `human_long_silence_ms` instead:
    # greetings pause mid-sentence, people who said a few words wait longer.
    short_utterance_ms: int = 800
    human_long_silence_ms: int = 800
    long_greeting_ms: int = 1400  # one utterance this long is a machine greeting
    # The stream ended (far end hung up) after an utterance this long: an
    # announcement (people who talk that long wait for a reply).
    announcement_min_ms: int = 1000
    min_speech_ms: int = 60  # shorter segments are clicks and line blips
    # Speech after a pause of `human_silence_ms` or more must last this long
    # to continue the utterance (noise bursts on a busy line are shorter).
    resume_min_ms: int = 200
    greeting_end_silence_ms: int = 1200  # silence that ends a greeting with no beep
    no_audio_ms: int = 4500  # nothing but silence from answer to here: no audio
    beep_min_ms: int = 80
    beep_min_hz: float = 300.0
    beep_max_hz: float = 2500.0
