"""The built-in simulated carrier: the default provider for demos and tests.

It "dials" by playing the callee's side of a call chosen per contact by the
plan's `sim_behavior` (metadata first, then variables), and reports status
events to the `CarrierEventSink` in the order a real carrier would:
initiated, ringing, then answered and completed, or busy, declined,
no_answer, failed. An answered call with a recording opens a Twilio Media
Stream to our own media endpoint, exactly as Twilio would, with the
per-call token in `customParameters.token`.

Behaviours: `answer:<wav path>` (8 kHz mono WAV; `hold` adds silence after
it), `answer` (no media, held `hold` s),
`busy`, `decline`, `no_answer`, `fail`, `dial_error` (the dial request is
refused); options after `;`, e.g. `busy;ring=0.5`, `answer;hold=2`.

Every dial and status is appended to an optional durable log (one JSON
line, fsynced) so a test can count dials across crashes, and so `lookup`
can answer after a restart: this carrier lives in the controller's
process, so a call it was running when the process died is reported failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec

from mediaserver.controller.dialer import (
    TERMINAL_STATUSES,
    CarrierEvent,
    CarrierEventSink,
    CarrierStatus,
    DialRequest,
    DialResult,
)
from mediaserver.errors import CarrierError, ValidationError
from mediaserver.logs import mask_number
from mediaserver.plan import PlanSource

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
KINDS = ("answer", "busy", "decline", "no_answer", "fail", "dial_error")


class SimBehavior(msgspec.Struct, frozen=True, kw_only=True):
    kind: str = "answer"
    recording: Path | None = None
    ring_s: float = 0.5
    hold_s: float = 1.0  # an answer without a recording lasts this long
    hold_given: bool = False  # with a recording: silence played after it


def parse_behavior(text: str) -> SimBehavior:
    """Read `kind[:recording][;ring=S][;hold=S]`; raises `ValidationError`."""
    head, *options = [part.strip() for part in text.split(";")]
    kind, _, recording = head.partition(":")
    if kind not in KINDS:
        raise ValidationError({"sim_behavior": f"unknown behaviour {kind!r}"})
    values: dict[str, float] = {}
    for option in options:
        name, _, raw = option.partition("=")
        if name not in ("ring", "hold"):
            raise ValidationError({"sim_behavior": f"unknown option {name!r}"})
        try:
            values[name] = float(raw)
        except ValueError:
            raise ValidationError({"sim_behavior": f"{name} needs seconds"}) from None
    return SimBehavior(
        kind=kind,
        recording=Path(recording) if recording else None,
        ring_s=values.get("ring", 0.5),
        hold_s=values.get("hold", 1.0),
        hold_given="hold" in values,
    )


class _Call:
    def __init__(self, request: DialRequest, provider_call_id: str) -> None:
        self.request = request
        self.provider_call_id = provider_call_id
        self.status = CarrierStatus.INITIATED
        self.sequence = 0
        self.task: asyncio.Task[None] | None = None


class SimulatedCarrier:
    """A `Dialer` (with `lookup`) that plays callees in-process."""

    name = "simulated"

    def __init__(
        self,
        plans: PlanSource | None = None,
        *,
        sink: CarrierEventSink | None = None,
        log_path: Path | None = None,
        speed: float = 1.0,
        default_behavior: str = "answer",
        clock: Clock | None = None,
    ) -> None:
        self._plans = plans
        self._sink = sink
        self._log_path = log_path
        self._speed = speed
        self._default = parse_behavior(default_behavior)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._calls: dict[str, _Call] = {}

    def bind(self, sink: CarrierEventSink, plans: PlanSource | None = None) -> None:
        """Where events go (the controller), and where behaviours are read."""
        self._sink = sink
        self._plans = plans or self._plans

    # -- Dialer ------------------------------------------------------------

    async def dial(self, request: DialRequest) -> DialResult:
        behavior = await self._behavior_for(request.call_id)
        if behavior.kind == "dial_error":
            raise CarrierError("simulated carrier refused the dial", retryable=False)

        provider_call_id = "SIM" + uuid.uuid4().hex
        call = _Call(request, provider_call_id)
        self._calls[provider_call_id] = call
        self._append(
            {
                "op": "dial",
                "call_id": request.call_id,
                "provider_call_id": provider_call_id,
                "to": mask_number(request.to_number),
            }
        )
        call.task = asyncio.create_task(
            self._play(call, behavior), name=f"sim-call-{provider_call_id}"
        )
        call.task.add_done_callback(self._call_done)
        log.info(
            "simulated dial to %s: %s",
            mask_number(request.to_number),
            behavior.kind,
            extra={"call_id": request.call_id},
        )
        return DialResult(provider_call_id=provider_call_id)

    async def hangup(self, provider_call_id: str) -> None:
        call = self._calls.get(provider_call_id)
        if call is None or call.status in TERMINAL_STATUSES:
            return
        if call.task is not None and call.task is not asyncio.current_task():
            call.task.cancel()
            await asyncio.gather(call.task, return_exceptions=True)
        answered = call.status is CarrierStatus.ANSWERED
        ending = CarrierStatus.COMPLETED if answered else CarrierStatus.CANCELED
        await self._report(call, ending, "hung up by us")

    async def lookup(self, provider_call_id: str) -> CarrierEvent | None:
        call = self._calls.get(provider_call_id)
        if call is not None:
            return self._event(call, call.status, "lookup")
        return self._lookup_logged(provider_call_id)

    async def close(self) -> None:
        tasks = [c.task for c in self._calls.values() if c.task and not c.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the callee --------------------------------------------------------

    async def _behavior_for(self, call_id: str) -> SimBehavior:
        plan = await self._plans.plan_for(call_id) if self._plans else None
        if plan is None:
            return self._default
        text = plan.metadata.get("sim_behavior") or plan.variables.get("sim_behavior")
        if not isinstance(text, str) or not text:
            return self._default
        try:
            return parse_behavior(text)
        except ValidationError as exc:
            log.warning("bad sim_behavior, using the default: %s", exc)
            return self._default

    async def _play(self, call: _Call, behavior: SimBehavior) -> None:
        await self._report(call, CarrierStatus.INITIATED)
        await self._sleep(min(behavior.ring_s, 0.1))
        await self._report(call, CarrierStatus.RINGING)
        await self._sleep(behavior.ring_s)

        if behavior.kind == "no_answer":
            await self._sleep(call.request.ring_timeout_s)
        ending = {
            "busy": CarrierStatus.BUSY,
            "decline": CarrierStatus.DECLINED,
            "no_answer": CarrierStatus.NO_ANSWER,
            "fail": CarrierStatus.FAILED,
        }.get(behavior.kind)
        if ending is not None:
            await self._report(call, ending)
            return

        await self._report(call, CarrierStatus.ANSWERED)
        if behavior.recording is not None and call.request.media_url:
            from mediaserver.carriers.sim_media import stream_recording

            await stream_recording(
                call.request,
                behavior.recording,
                speed=self._speed,
                hold_s=behavior.hold_s if behavior.hold_given else 0.0,
            )
        else:
            await self._sleep(behavior.hold_s)
        await self._report(call, CarrierStatus.COMPLETED)

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)

    async def _report(
        self, call: _Call, status: CarrierStatus, detail: str = ""
    ) -> None:
        if call.status in TERMINAL_STATUSES:
            return
        call.status = status
        call.sequence += 1
        self._append(
            {
                "op": "status",
                "call_id": call.request.call_id,
                "provider_call_id": call.provider_call_id,
                "status": status.value,
            }
        )
        if self._sink is not None:
            await self._sink.carrier_event(self._event(call, status, detail))

    def _event(self, call: _Call, status: CarrierStatus, detail: str) -> CarrierEvent:
        return CarrierEvent(
            provider=self.name,
            provider_call_id=call.provider_call_id,
            status=status,
            at=self._clock(),
            call_id=call.request.call_id,
            sequence=call.sequence,
            detail=detail,
        )

    def _call_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("simulated call task failed", exc_info=task.exception())

    # -- the durable log ---------------------------------------------------

    def _append(self, record: dict[str, str]) -> None:
        if self._log_path is None:
            return
        line = msgspec.json.encode(record) + b"\n"
        fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(
                fd, line
            )  # one write per line: appends from processes interleave whole
            os.fsync(fd)
        finally:
            os.close(fd)

    def _lookup_logged(self, provider_call_id: str) -> CarrierEvent | None:
        if self._log_path is None or not self._log_path.exists():
            return None
        call_id: str | None = None
        last: CarrierStatus | None = None
        for record in read_log(self._log_path):
            if record.get("provider_call_id") != provider_call_id:
                continue
            call_id = record.get("call_id")
            if record.get("op") == "status":
                last = CarrierStatus(record["status"])
        if call_id is None:
            return None
        detail = "lookup"
        if last is None or last not in TERMINAL_STATUSES:
            last = CarrierStatus.FAILED
            detail = "the simulated carrier stopped with the call still running"
        return CarrierEvent(
            provider=self.name,
            provider_call_id=provider_call_id,
            status=last,
            at=self._clock(),
            call_id=call_id,
            detail=detail,
        )


def read_log(path: Path) -> list[dict[str, str]]:
    """The records of a simulated-carrier log; a torn last line is skipped."""
    records: list[dict[str, str]] = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(msgspec.json.decode(line, type=dict[str, str]))
        except msgspec.DecodeError:
            continue
    return records
