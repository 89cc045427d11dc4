"""Corpus mode of the demo: every recording, played as a Twilio call, into AMD.

`run_corpus_demo` starts the media server and the reference agent on
127.0.0.1, plays each recording of a folder as a Twilio media stream (real
time, or `speed` times faster; `concurrency` calls at once), and returns
one `CallResult` per file. `print_report` prints the table, the accuracy
and the latency percentiles. benchmarks/amd_ws.py reuses both.

Scoring: files labelled machine or human are scored on the verdict's
label; the other corpus files (speech, noise, tones) are listed, not
scored. A voicemail keeps recording after its beep, so each stream holds
a few seconds of silence after its file, or until the server hangs up.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np

from mediaserver import tokens
from mediaserver.agent import protocol as ap
from mediaserver.agent.reference import AgentRecord, ReferenceAgent
from mediaserver.amd.events import Verdict
from mediaserver.amd.settings import AmdSettings
from mediaserver.corpus import CorpusEntry, load_manifest, read_wav
from mediaserver.ids import new_id
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import (
    InMemoryPlans,
    MediaServer,
    MediaServerSettings,
    OutcomeLog,
)
from mediaserver.plan import CallPlan
from mediaserver.testing.twilio_stream import TwilioStream

SCORED = ("machine", "human")


class CallResult(msgspec.Struct, kw_only=True):
    file: str
    label: str
    verdict: str = "-"
    machine_state: str = ""
    cause: str = ""
    verdict_ms: int | None = None  # stream time from answer
    speech_end_ms: int | None = None  # end of the speech before a human verdict
    beep_ms: int | None = None  # onset of the beep AMD heard
    beep_end_ms: int | None = None
    final_action: str = "-"
    final_ms: int | None = None
    end_type: str = ""
    delivery_ms: float | None = None  # wall delay: frame sent -> agent has verdict
    error: str = ""  # why the file could not be played as a call

    @property
    def scored(self) -> bool:
        return self.label in SCORED

    @property
    def correct(self) -> bool:
        return self.verdict == self.label


async def run_corpus_demo(
    folder: Path | None = None,
    speed: float = 1.0,
    *,
    concurrency: int = 8,
    amd: AmdSettings | None = None,
    engine: AmdEngine | None = None,
    only: Callable[[CorpusEntry], bool] | None = None,
    on_result: Callable[[CallResult], None] | None = None,
) -> list[CallResult]:
    """Play every recording of `folder` through the real WebSocket path."""
    entries = [e for e in load_manifest(folder) if only is None or only(e)]
    secret = new_id()
    plans, outcomes = InMemoryPlans(), OutcomeLog()
    engine = engine or AmdEngine()
    engine.warm_up()
    server = MediaServer(
        MediaServerSettings(secret=secret),
        plans=plans,
        observer=outcomes,
        amd=engine,
    )
    gate = asyncio.Semaphore(concurrency)
    async with ReferenceAgent(secret) as agent, server:

        async def one(entry: CorpusEntry) -> CallResult:
            try:
                audio = read_wav(entry.path)
            except (OSError, EOFError, ValueError, wave.Error) as exc:
                # One unreadable file is one row of the table, not the end.
                failed = CallResult(file=entry.name, label=entry.label, error=str(exc))
                if on_result is not None:
                    on_result(failed)
                return failed
            async with gate:
                plan = CallPlan(
                    call_id=new_id(),
                    campaign_id="corpus-demo",
                    conversation_id=new_id(),
                    agent_url=agent.url,
                    opening_script="Hello, this is the Callwright demo calling.",
                    leave_message_script="Sorry we missed you; we will call again.",
                    amd=amd or AmdSettings(),
                )
                plans.add(plan)
                token = tokens.issue(secret.encode(), plan.call_id)
                stream = TwilioStream(server.url("twilio"), token=token, speed=speed)
                async with stream:
                    await stream.play(audio, hold_s=3.0 * speed)
                    await stream.wait_closed(within_s=30.0)
                outcome = await outcomes.wait_outcome(plan.call_id)
                result = _result(entry, agent.sessions.get(plan.call_id), stream)
                result.end_type = outcome.end_type
                if outcome.verdict is not None:
                    _take_verdict(result, outcome.verdict)
                if on_result is not None:
                    on_result(result)
                return result

        return list(await asyncio.gather(*(one(e) for e in entries)))


def _result(
    entry: CorpusEntry, record: AgentRecord | None, stream: TwilioStream
) -> CallResult:
    result = CallResult(file=entry.name, label=entry.label)
    if record is None:
        return result
    for message, at in zip(record.messages, record.received_at, strict=True):
        if isinstance(message, ap.VerdictEvent) and stream.play_started is not None:
            # The frame that ends at the verdict's stream time left the carrier
            # one frame (20 ms) after the stream time before it.
            frame_start_s = max(message.verdict.at_ms - 20, 0) / 1000
            sent = stream.play_started + frame_start_s / stream.speed
            result.delivery_ms = (at - sent) * 1000
        elif isinstance(message, ap.BeepEvent) and result.beep_ms is None:
            result.beep_ms, result.beep_end_ms = message.onset_ms, message.end_ms
        elif isinstance(message, ap.FinalActionEvent):
            result.final_action, result.final_ms = message.action, message.at_ms
    return result


def _take_verdict(result: CallResult, verdict: Verdict) -> None:
    result.verdict = verdict.label.value
    result.machine_state = verdict.machine_state or ""
    result.cause = verdict.cause
    result.verdict_ms = verdict.at_ms
    result.speech_end_ms = verdict.timings.last_speech_end_ms


def _s(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}"


def _pct(values: list[float], q: float) -> str:
    return "-" if not values else f"{np.percentile(values, q):.0f} ms"


def print_report(results: list[CallResult], *, wall_s: float | None = None) -> None:
    """The table, then accuracy and latency percentiles."""
    print(
        f"{'file':<58} {'expect':<7} {'verdict':<8} {'state':<8} "
        f"{'at s':>6} {'beep s':>6} {'final':<14} {'end':<16}"
    )
    for r in sorted(results, key=lambda r: (r.label, r.file)):
        final = (
            r.final_action
            if r.final_ms is None
            else f"{r.final_action}@{_s(r.final_ms)}"
        )
        expect = r.label if r.scored else f"({r.label})"
        if r.error:
            print(f"{r.file[:58]:<58} {expect:<7} not played: {r.error[:80]}")
            continue
        print(
            f"{r.file[:58]:<58} {expect:<7} {r.verdict:<8} {r.machine_state:<8} "
            f"{_s(r.verdict_ms):>6} {_s(r.beep_ms):>6} {final:<14} {r.end_type:<16}"
        )
    if not results:
        print("no WAV files found")
    scored = [r for r in results if r.scored and not r.error]
    right = sum(r.correct for r in scored)
    humans = [r for r in scored if r.label == "human"]
    humans_wrong = sum(r.verdict == "machine" for r in humans)
    print()
    if scored:
        print(f"accuracy: {right}/{len(scored)} = {100 * right / len(scored):.1f} %")
    if humans:
        print(f"humans called machine: {humans_wrong}/{len(humans)}")
    human_lat = [
        float(r.verdict_ms - r.speech_end_ms)
        for r in humans
        if r.verdict_ms is not None and r.speech_end_ms is not None
    ]
    machine_lat = [
        float(r.verdict_ms)
        for r in scored
        if r.label == "machine" and r.verdict == "machine" and r.verdict_ms is not None
    ]
    cue = [
        float(r.final_ms - r.beep_end_ms)
        for r in results
        if r.final_action == "leave_message"
        and r.final_ms is not None
        and r.beep_end_ms is not None
        and r.final_ms >= r.beep_end_ms
    ]
    delivery = [r.delivery_ms for r in results if r.delivery_ms is not None]
    print(
        f"human verdict after speech end: p50 {_pct(human_lat, 50)}, "
        f"p95 {_pct(human_lat, 95)}  (target p50 <= 600 ms, p95 <= 1000 ms)"
    )
    print(
        f"machine verdict after answer: p50 {_pct(machine_lat, 50)}, "
        f"p95 {_pct(machine_lat, 95)}  (target p50 <= 2000 ms)"
    )
    print(
        f"leave-message cue after beep end: p50 {_pct(cue, 50)}, "
        f"max {_pct(cue, 100)}  (target <= 150 ms)"
    )
    print(
        f"verdict delivery over the WebSocket path (wall): p50 {_pct(delivery, 50)}, "
        f"p99 {_pct(delivery, 99)}"
    )
    if wall_s is not None:
        played = sum(not r.error for r in results)
        print(f"{played} calls in {wall_s:.1f} s")
    unplayed = len(results) - sum(not r.error for r in results)
    if unplayed:
        print(f"{unplayed} file(s) could not be played (see 'not played' above)")


async def main_async(folder: Path | None, speed: float, concurrency: int) -> int:
    started = time.monotonic()
    results = await run_corpus_demo(folder, speed, concurrency=concurrency)
    print_report(results, wall_s=time.monotonic() - started)
    return 0
