"""The built-in simulated carrier: the default provider for demos and tests.

It "dials" by playing the callee's side of a call chosen per contact by the
plan's `sim_behavior` (metadata first, then variables), and reports status
events to the `CarrierEventSink` in the order a real carrier would:
initiated, ringing, then answered and completed, or busy, declined,
no_answer, failed. An answered call with a recording opens a Twilio Media
Stream to our own media endpoint, exactly as Twilio would, with the
per-call token in `customParameters.token`.

Behaviours (docs/simulated-carrier.md): `answer:<wav path>` (8 kHz mono
WAV inside one of `recordings_dirs`; `hold` adds silence after it), `answer`
(no media, held `hold` s), `busy`, `decline`, `no_answer`, `fail`,
`dial_error` (the dial request is refused); options after `;`, e.g.
`busy;ring=0.5`, `answer;hold=2`. Parsing is strict: a behaviour that does
not parse, or names a recording outside the folders, refuses the dial
(the attempt ends initiation_failed with the reason). A recording that
cannot be played fails the call with the error text; it never hangs.

Every dial and status is appended to an optional durable log (one JSON
line, fsynced) so a test can count dials across crashes, and so `lookup`
can answer after a restart: this carrier lives in the controller's
process, so a call it was running when the process died is reported failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import msgspec

from mediaserver.clock import Clock
from mediaserver.controller.dialer import (
    TERMINAL_STATUSES,
    CarrierEvent,
    CarrierEventSink,
    CarrierStatus,
    DialRequest,
    DialResult,
)
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import CarrierError, ValidationError
from mediaserver.logs import mask_number
from mediaserver.plan import PlanSource

log = logging.getLogger(__name__)

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
    kind, colon, recording = (part.strip() for part in head.partition(":"))
    if kind not in KINDS:
        known = ", ".join(KINDS)
        raise _bad(f"unknown behaviour {kind!r}; one of {known}")
    if colon and kind != "answer":
        raise _bad(f"{kind} takes no recording")
    if colon and not recording:
        raise _bad("answer: needs a recording path after the colon")
    values = _options(options)
    return SimBehavior(
        kind=kind,
        recording=Path(recording) if recording else None,
        ring_s=values.get("ring", 0.5),
        hold_s=values.get("hold", 1.0),
        hold_given="hold" in values,
    )


def _options(options: list[str]) -> dict[str, float]:
    """`ring=S` and `hold=S`, each at most once, in finite seconds >= 0."""
    values: dict[str, float] = {}
    for option in options:
        name, _, raw = (part.strip() for part in option.partition("="))
        if name not in ("ring", "hold"):
            raise _bad(f"unknown option {name!r}; options are ring=S and hold=S")
        if name in values:
            raise _bad(f"{name} given twice")
        try:
            seconds = float(raw)
        except ValueError:
            raise _bad(f"{name} needs seconds, e.g. {name}=2") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise _bad(f"{name} needs seconds of 0 or more")
        values[name] = seconds
    return values


def _bad(reason: str) -> ValidationError:
    return ValidationError({"sim_behavior": reason})


def resolve_recording(recording: Path, folders: Sequence[Path]) -> Path:
    """The recording's real path, inside one of `folders`; raises `ValidationError`.

    A relative path is looked up in each folder in turn; an absolute one must
    already lie inside a folder. `..` is refused outright, and symbolic links
    are followed before the check, so no path leaves the folders.
    """
    if ".." in recording.parts:
        raise _bad("a recording path may not contain '..'")
    roots = [folder.resolve() for folder in folders]
    if recording.is_absolute():
        candidates = [recording.resolve()]
    else:
        candidates = [root / recording for root in roots]
    for candidate in candidates:
        real = candidate.resolve()
        inside = any(real.is_relative_to(root) for root in roots)
        if inside and (real.is_file() or recording.is_absolute()):
            return real
    if recording.is_absolute():
        raise _bad("the recording is outside the simulated carrier's folders")
    raise _bad(f"no recording {str(recording)!r} in the simulated carrier's folders")


def validate_sim_behavior(
    text: str, recordings_dirs: Sequence[Path] | None = None
) -> str | None:
    """None if `text` is a valid behaviour, else the reason (for a 422).

    With `recordings_dirs`, the recording must also be found inside them
    (the dial checks this again: files can move between launch and dial).
    """
    try:
        behavior = parse_behavior(text)
        if behavior.recording is not None and recordings_dirs is not None:
            resolve_recording(behavior.recording, recordings_dirs)
    except ValidationError as exc:
        return str(exc.errors.get("sim_behavior", exc))
    return None


class _Call:
    def __init__(self, request: DialRequest, provider_call_id: str) -> None:
        self.request = request
        self.provider_call_id = provider_call_id
        self.status = CarrierStatus.INITIATED
        self.sequence = 0
        self.task: asyncio.Task[None] | None = None


class SimulatedCarrier:
    """A `Dialer` (with `lookup`) that plays callees in-process.

    `recordings_dirs` are the only folders recordings are read from; the
    default is the corpus folder (`default_corpus_dir()`) and nothing else.
    """

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
        recordings_dirs: Sequence[Path] | None = None,
    ) -> None:
        self._plans = plans
        self._sink = sink
        self._log_path = log_path
        self._speed = speed
        self._default = parse_behavior(default_behavior)
        if recordings_dirs is None:
            recordings_dirs = [default_corpus_dir()]
        self.recordings_dirs = list(recordings_dirs)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._calls: dict[str, _Call] = {}

    def bind(self, sink: CarrierEventSink, plans: PlanSource | None = None) -> None:
        """Where events go (the controller), and where behaviours are read."""
        self._sink = sink
        self._plans = plans or self._plans

    # -- Dialer ------------------------------------------------------------

    async def dial(self, request: DialRequest) -> DialResult:
        try:
            behavior = await self._behavior_for(request.call_id)
        except ValidationError as exc:
            reason = exc.errors.get("sim_behavior", str(exc))
            raise CarrierError(
                f"invalid sim_behavior: {reason}", retryable=False
            ) from None
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
        """The contact's behaviour, its recording resolved; `ValidationError`."""
        plan = await self._plans.plan_for(call_id) if self._plans else None
        text = None
        if plan is not None:
            text = plan.metadata.get("sim_behavior")
            if text is None or text == "":
                text = plan.variables.get("sim_behavior")
        if text is None or text == "":
            behavior = self._default
        elif not isinstance(text, str):
            raise _bad(f"must be text, got {type(text).__name__}")
        else:
            behavior = parse_behavior(text)
        if behavior.recording is None:
            return behavior
        real = resolve_recording(behavior.recording, self.recordings_dirs)
        return msgspec.structs.replace(behavior, recording=real)

    async def _play(self, call: _Call, behavior: SimBehavior) -> None:
        """The callee's side; any failure ends the call failed, with its text."""
        try:
            await self._play_callee(call, behavior)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "simulated call failed: %s",
                exc,
                extra={"call_id": call.request.call_id},
            )
            await self._report(call, CarrierStatus.FAILED, f"simulated callee: {exc}")

    async def _play_callee(self, call: _Call, behavior: SimBehavior) -> None:
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

        if behavior.recording is not None and call.request.media_url:
            from mediaserver.carriers.sim_media import load_recording, stream_recording

            # Read before answering: a recording that cannot play fails the call.
            pcm = load_recording(behavior.recording)
            await self._report(call, CarrierStatus.ANSWERED)
            await stream_recording(
                call.request,
                pcm,
                speed=self._speed,
                hold_s=behavior.hold_s if behavior.hold_given else 0.0,
            )
        else:
            await self._report(call, CarrierStatus.ANSWERED)
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
