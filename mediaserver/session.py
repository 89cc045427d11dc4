"""One call: a carrier stream, the AMD pipeline and the agent link, bound together.

The carrier glue (transports/ws.py) feeds inbound frames in; the session
orders them, runs AMD on the decoded audio until AMD is done, forwards the
raw frames to the agent, paces the agent's audio back to the carrier and
ends the call once, with one end type:

- agent hangs up: `agent_hangup`, or `voicemail_ended` after leave_message
- carrier stops or disconnects: `user_hangup`
- AMD final action end_call: `amd_end_call`
- `max_call_s` passes: `timeout`
- the agent link fails: AMD keeps running until it is done (the verdict is
  still reported), then the call ends with `failed`.

A plan without `agent_url` is an AMD-only call: nothing is forwarded and
the call lasts until the carrier hangs up or `max_call_s` passes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Protocol

from mediaserver.agent import protocol as ap
from mediaserver.agent.client import AgentLink, AgentLinkConfig
from mediaserver.amd.events import (
    AmdEvent,
    Beep,
    FinalAction,
    FinalActionKind,
    GreetingEnded,
    LlmCheckWanted,
    StopSpeaking,
    Verdict,
)
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.clock import utc_now
from mediaserver.codecs.g711 import alaw_to_pcm, ulaw_to_pcm
from mediaserver.logs import mask_number
from mediaserver.media_amd import AmdEngine
from mediaserver.plan import CallObserver, CallOutcome, CallPlan, EndType, Turn
from mediaserver.transports.common import SILENCE_BYTE, Encoding, Started
from mediaserver.transports.counters import CallCounters, LagRecorder
from mediaserver.transports.framing import FrameSequencer, OutboundPacer

log = logging.getLogger(__name__)

HANGUP_MARK = "callwright-hangup"  # ours: the agent's last audio has played


class CarrierSender(Protocol):
    """The carrier side as the session needs it: encoded messages out, and close."""

    carrier: str

    def encode_media(self, payload: bytes) -> bytes: ...

    def encode_mark(self, name: str) -> bytes: ...

    def encode_clear(self) -> bytes: ...

    async def send(self, message: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class CallSession:
    """Everything one answered call needs; created once `start` is verified."""

    def __init__(
        self,
        *,
        plan: CallPlan,
        started: Started,
        carrier: CarrierSender,
        observer: CallObserver,
        agent_config: AgentLinkConfig,
        amd: AmdEngine | None,
        reorder_depth: int = 0,
        lag: LagRecorder | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.plan = plan
        self.call_id = plan.call_id
        self.counters = CallCounters()
        self.verdict: Verdict | None = None
        self.turns: list[Turn] = []
        self.end_type: str | None = None
        self._carrier = carrier
        self._observer = observer
        self._engine = amd
        self._pipeline: AmdPipeline | None = None
        if amd is not None and plan.amd.enabled:
            self._pipeline = amd.pipeline(plan.amd, self)
        self._clock = clock
        self._lag = lag
        self._encoding = started.encoding
        self._decode = ulaw_to_pcm if started.encoding is Encoding.PCMU else alaw_to_pcm
        silence = SILENCE_BYTE[started.encoding]
        self._sequencer = FrameSequencer(silence, reorder_depth=reorder_depth)
        self._pacer = OutboundPacer(silence)
        self._wake = asyncio.Event()
        self._samples = 0  # stream time, in samples
        self._t0: float | None = None
        self._muted = False  # after stop speaking, until leave_message
        self._leaving_message = False
        # No agent_url: an AMD-only call, ended by the carrier or the timer.
        self._agent_down = False
        self._error: str | None = None
        self._hangup_mark = asyncio.Event()
        self._ended = asyncio.Event()
        self._closing = False
        self._started_at = clock()
        self._extra = {"call_id": plan.call_id, "campaign_id": plan.campaign_id}
        self._agent = AgentLink(
            plan.agent_url,
            self._session_start(started),
            config=agent_config,
            session=self,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _session_start(self, started: Started) -> ap.SessionStart:
        plan = self.plan
        return ap.SessionStart(
            token="",  # filled by AgentLink with the agent token
            call_id=plan.call_id,
            campaign_id=plan.campaign_id,
            conversation_id=plan.conversation_id,
            stream_id=started.stream_id,
            carrier=self._carrier.carrier,
            media_format=ap.MediaFormat(encoding=started.encoding.value),
            opening_script=plan.opening_script,
            leave_message_script=plan.leave_message_script,
            variables=plan.variables,
            metadata=plan.metadata,
            from_number=plan.from_number if plan.inject_numbers else None,
            to_number=plan.to_number if plan.inject_numbers else None,
            amd_enabled=self._pipeline is not None,
        )

    @property
    def stream_ms(self) -> int:
        return self._samples // 8

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def begin(self) -> None:
        """Report the answer and start the agent link, pacer and call timer."""
        log.info(
            "call answered on %s to %s",
            self._carrier.carrier,
            mask_number(self.plan.to_number),
            extra=self._extra,
        )
        await self._notify(self._observer.call_answered(self.call_id, self._started_at))
        name = self.call_id
        if self.plan.agent_url:
            self._spawn(self._agent.run(), f"agent-{name}")
        self._spawn(self._pace(), f"pacer-{name}")
        self._spawn(self._watchdog(), f"watchdog-{name}")

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def wait_ended(self) -> None:
        await self._ended.wait()

    # Inbound from the carrier.

    async def on_media(self, chunk: str | int | None, payload: bytes) -> None:
        """One inbound frame: order it, analyse it, forward it to the agent."""
        self.counters.frames_in += 1
        for frame in self._sequencer.push(chunk, payload):
            self._samples += len(frame)
            pipeline = self._pipeline
            if pipeline is not None:
                events = pipeline.push(self._decode(frame))
                if events:
                    await self.amd_events(events)
                elif pipeline.done:
                    await self._amd_over()
            await self._agent.send_audio(frame)
        if self._lag is not None:
            self._record_lag(self._lag)

    def _record_lag(self, lag: LagRecorder) -> None:
        # Lag: when this frame's processing ended, against its stream time.
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now - self._samples / 8000
        lag.add((now - self._t0 - self._samples / 8000) * 1000)

    async def on_mark(self, name: str) -> None:
        if name == HANGUP_MARK:
            self._hangup_mark.set()
            return
        await self._agent.send(ap.MarkEvent(name=name, played=True))

    async def on_dtmf(self, digit: str) -> None:
        self.counters.bump("dtmf")
        await self._agent.send(ap.DtmfEvent(digit=digit, at_ms=self.stream_ms))

    async def on_carrier_gone(self, reason: str) -> None:
        """The carrier sent `stop` or the socket closed: the callee hung up."""
        for frame in self._sequencer.flush():
            self._samples += len(frame)
        await self.end(EndType.USER_HANGUP, reason, close_carrier=False)

    # AMD.

    async def amd_events(self, events: list[AmdEvent]) -> None:
        """Events from this call's pipeline (inline, or from the batch tick)."""
        await self._on_amd(events)
        pipeline = self._pipeline
        if pipeline is not None and pipeline.done:
            await self._amd_over()

    async def _amd_over(self) -> None:
        # AMD is over for this call: the VAD stops running here.
        if self._pipeline is not None and self._engine is not None:
            self._engine.release(self._pipeline)
        self._pipeline = None
        if self._agent_down:
            await self._end_if_orphaned()

    async def _on_amd(self, events: list[AmdEvent]) -> None:
        for event in events:
            if type(event) is Verdict:
                await self._on_verdict(event)
            elif type(event) is StopSpeaking:
                await self._on_stop_speaking(event)
            elif type(event) is Beep:
                await self._agent.send(
                    ap.BeepEvent(
                        onset_ms=event.onset_ms,
                        end_ms=event.end_ms,
                        frequency_hz=event.frequency_hz,
                    )
                )
            elif type(event) is GreetingEnded:
                await self._agent.send(
                    ap.GreetingEndedEvent(at_ms=event.at_ms, by=event.by)
                )
            elif type(event) is FinalAction:
                await self._on_final_action(event)
            elif type(event) is LlmCheckWanted:
                await self._on_llm_wanted(event)

    async def _on_llm_wanted(self, event: LlmCheckWanted) -> None:
        pipeline = self._pipeline
        check = self._engine.llm_check if self._engine is not None else None
        if pipeline is None:
            return
        if check is None:
            # No model configured: the acoustic verdict stands at once.
            await self.amd_events(pipeline.llm_answer(None))
            return
        audio = pipeline.greeting_audio()
        budget_s = max(0.0, (event.deadline_ms - event.at_ms) / 1000)

        async def ask() -> None:
            label = await check(audio, budget_s)
            if self._pipeline is pipeline:
                await self.amd_events(pipeline.llm_answer(label))

        self._spawn(ask(), f"llm-check-{self.call_id}")

    async def _on_verdict(self, verdict: Verdict) -> None:
        self.verdict = verdict
        log.info(
            "verdict %s (%s) at %d ms",
            verdict.label,
            verdict.cause,
            verdict.at_ms,
            extra=self._extra,
        )
        await self._notify(self._observer.call_verdict(self.call_id, verdict))
        await self._agent.send(ap.VerdictEvent(verdict=verdict))
        await self._end_if_orphaned()

    async def _on_stop_speaking(self, event: StopSpeaking) -> None:
        if not self.plan.amd.stop_speaking:
            return
        # Both buffers go: ours (not yet sent) and the carrier's (not yet played).
        self._muted = True
        flushed = self._pacer.clear()
        await self._carrier.send(self._carrier.encode_clear())
        self.counters.bump("clears_sent")
        await self._agent.send(
            ap.StopSpeakingEvent(at_ms=event.at_ms, reason=event.reason)
        )
        for name in flushed:
            await self._agent.send(ap.MarkEvent(name=name, played=False))

    async def _on_final_action(self, event: FinalAction) -> None:
        script = ""
        if event.action is FinalActionKind.LEAVE_MESSAGE:
            self._muted = False
            self._leaving_message = True
            script = self.plan.leave_message_script
        await self._agent.send(
            ap.FinalActionEvent(
                action=event.action.value,
                at_ms=event.at_ms,
                reason=event.reason,
                script=script,
            )
        )
        if event.action is FinalActionKind.END_CALL:
            await self.end(EndType.AMD_END_CALL, "final action end_call")

    # Inbound from the agent (called by AgentLink).

    def agent_audio(self, data: bytes) -> None:
        if self._muted or self._closing:
            self.counters.bump("agent_audio_muted")
            return
        self._pacer.add_audio(data, time.monotonic())
        self._wake.set()

    async def agent_message(self, message: ap.FromAgent) -> None:
        if type(message) is ap.AgentMark:
            if self._muted:
                await self._agent.send(ap.MarkEvent(name=message.name, played=False))
                return
            self._pacer.add_mark(message.name)
            self._wake.set()
        elif type(message) is ap.AgentClear:
            for name in self._pacer.clear():
                await self._agent.send(ap.MarkEvent(name=name, played=False))
            await self._carrier.send(self._carrier.encode_clear())
            self.counters.bump("clears_sent")
        elif type(message) is ap.AgentTurn:
            self.turns.append(
                Turn(
                    speaker=message.speaker,
                    text=message.text,
                    start_ms=message.start_ms,
                    end_ms=message.end_ms,
                )
            )
        elif type(message) is ap.AgentHangup:
            end_type = (
                EndType.VOICEMAIL_ENDED
                if self._leaving_message
                else EndType.AGENT_HANGUP
            )
            await self._drain_outbound()
            await self.end(end_type, message.reason or "agent hung up")

    async def agent_failed(self, reason: str) -> None:
        """The agent link could not open or broke; see the module docstring."""
        if self.ended or self._agent_down:
            return
        self._agent_down = True
        self.counters.bump("agent_failures")
        log.warning("agent link failed: %s", reason, extra=self._extra)
        self._error = reason
        await self._end_if_orphaned()

    async def _end_if_orphaned(self) -> None:
        # No agent to talk to: once AMD has said its piece, the call is over.
        if self._agent_down and self._pipeline is None:
            reason = self._error or "no agent"
            await self.end(EndType.FAILED, reason, error=reason)

    # Outbound to the carrier.

    async def _pace(self) -> None:
        pacer = self._pacer
        while True:
            await self._wake.wait()
            self._wake.clear()
            while not pacer.idle:
                now = time.monotonic()
                generation = pacer.generation
                for item in pacer.take(now):
                    if pacer.generation != generation:
                        break  # a clear came while we were sending: drop the rest
                    if isinstance(item, bytes):
                        await self._carrier.send(self._carrier.encode_media(item))
                        self.counters.frames_out += 1
                    else:
                        await self._carrier.send(self._carrier.encode_mark(item))
                await asyncio.sleep(max(pacer.next_due(time.monotonic()), 0.005))

    async def _drain_outbound(self) -> None:
        """Let the agent's last audio play out before a clean hang-up.

        A mark queued behind it comes back from the carrier once it has played.
        """
        if self._pacer.idle and self.counters.frames_out == 0:
            return
        wait_s = self._pacer.queued_ms / 1000 + 2.0
        self._pacer.add_mark(HANGUP_MARK)
        self._wake.set()
        self._closing = True
        try:
            await asyncio.wait_for(self._hangup_mark.wait(), wait_s)
        except TimeoutError:
            self.counters.bump("hangup_drain_timeouts")

    async def _watchdog(self) -> None:
        await asyncio.sleep(self.plan.max_call_s)
        await self.end(EndType.TIMEOUT, f"max_call_s {self.plan.max_call_s} reached")

    # Ending.

    async def end(
        self,
        end_type: str,
        reason: str = "",
        *,
        close_carrier: bool = True,
        error: str | None = None,
    ) -> None:
        """End the call once: tell the agent, close both sockets, report."""
        if self.end_type is not None:
            return
        self.end_type = end_type
        self._closing = True
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            await self._settle_amd(pipeline)

        await self._agent.close(ap.SessionEnd(end_type=end_type, reason=reason))
        await self._cancel_tasks()
        if close_carrier:
            await self._carrier.close(1000, reason[:120])
        seq = self._sequencer
        for key, n in (
            ("gaps", seq.gaps),
            ("silence_frames", seq.silence_frames),
            ("late_frames", seq.late_frames),
            ("unnumbered_frames", seq.unnumbered),
        ):
            if n:
                self.counters.bump(key, n)
        self.counters.close()
        if error is None and end_type == EndType.FAILED:
            error = reason
        outcome = CallOutcome(
            call_id=self.call_id,
            conversation_id=self.plan.conversation_id,
            started_at=self._started_at,
            ended_at=self._clock(),
            end_type=end_type,
            verdict=self.verdict,
            turns=list(self.turns),
            error=error,
        )
        log.info("call ended: %s (%s)", end_type, reason, extra=self._extra)
        await self._notify(self._observer.call_ended(outcome))
        self._ended.set()

    async def _settle_amd(self, pipeline: AmdPipeline) -> None:
        """The stream is over before AMD was: take the verdict it settles on."""
        if self._engine is not None:
            self._engine.release(pipeline)
        if pipeline.done:
            return
        for event in pipeline.finish():
            if type(event) is Verdict:
                self.verdict = event
                await self._notify(self._observer.call_verdict(self.call_id, event))

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        for task in others:
            task.cancel()
        for task in others:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("session task %s failed", task.get_name())

    async def _notify(self, call: Awaitable[None]) -> None:
        # A failing observer is logged; it never ends the call.
        try:
            await call
        except Exception:
            self.counters.bump("observer_errors")
            log.exception("call observer failed", extra=self._extra)
