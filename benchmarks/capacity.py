"""How many concurrent calls in AMD one core keeps in real time, over real WebSockets.

    .venv/bin/python -m benchmarks.capacity [--calls 100,200,400] [--seconds 10]
        [--modes inline,batched]

For each VAD mode (inline, batched), scenario and call count, the media
server runs in a subprocess pinned to core 0 and the carrier side in
another pinned to core 1. Each call is a Twilio media stream in real time;
calls have no agent (AMD-only plans). Two scenarios:

- `busy`: every call plays speech and AMD is set never to decide, so every
  call runs the VAD on every chunk for the whole run (the worst case).
- `calls`: each call plays one of the corpus's machine and human recordings
  (then silence) with the default AMD settings, starting at staggered
  times over the first half of the run; AMD, and so the VAD, stops at each
  call's verdict or final action, as in production.

The server records, for every inbound frame, how late its processing
finished against the frame's stream time (first frame = 0): the frame lag;
and how late a 5 ms sleep wakes up (loop stalls: its own work, or the
process kept off its core by other load). The client reports how late its
own sends were; a run where the client lagged is marked, since then the
server was not the limit. On a shared machine the stall column tells
whether the run measured the server or the neighbours; the per-frame CPU
costs printed first are measured in process and hold either way.
Targets (DESIGN.md): >= 500 calls, p99 frame lag < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from mediaserver import tokens
from mediaserver.amd.settings import AmdSettings
from mediaserver.corpus import default_corpus_dir, load_manifest, read_wav
from mediaserver.plan import CallPlan

AUDIO = "speech/pyannote_phone_conversation_30s.wav"
TARGET_CALLS = 500
TARGET_P99_MS = 20.0
WS_RECV_US = 24.0  # the websockets library's receive path, DESIGN.md budget
NEVER = 10**9
# AMD that never reaches a verdict: the VAD runs on every chunk all along.
BUSY_AMD = AmdSettings(
    initial_check_delay_ms=NEVER,
    decision_deadline_ms=NEVER,
    no_audio_ms=NEVER,
    leave_message_cap_ms=NEVER,
)


class AnyPlans:
    """Every call id gets an AMD-only plan."""

    def __init__(self, amd: AmdSettings) -> None:
        self._amd = amd

    async def plan_for(self, call_id: str) -> CallPlan | None:
        return CallPlan(
            call_id=call_id,
            campaign_id="capacity",
            conversation_id=call_id,
            agent_url="",
            amd=self._amd,
            max_call_s=3600,
        )


class NullObserver:
    async def call_answered(self, call_id: str, at: object) -> None:
        pass

    async def call_verdict(self, call_id: str, verdict: object) -> None:
        pass

    async def call_ended(self, outcome: object) -> None:
        pass


# The server process.


async def serve(secret: str, batched: bool, scenario: str) -> None:
    from mediaserver.media_amd import AmdEngine
    from mediaserver.media_server import MediaServer, MediaServerSettings

    engine = AmdEngine(batched=batched)
    engine.warm_up()
    server = MediaServer(
        MediaServerSettings(secret=secret, measure_lag=True, start_timeout_s=30),
        plans=AnyPlans(BUSY_AMD if scenario == "busy" else AmdSettings()),
        observer=NullObserver(),  # type: ignore[arg-type]
        amd=engine,
    )
    loop = asyncio.get_running_loop()
    stalls: list[float] = []

    async def watch_loop() -> None:
        # How late a 5 ms sleep wakes up: the loop's own stalls, or the
        # process being kept off its core by other load.
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.005)
            stalls.append((time.monotonic() - before - 0.005) * 1000)

    watcher = loop.create_task(watch_loop(), name="loop-watch")
    async with server:
        print(f"PORT {server.port}", flush=True)
        cpu0 = wall0 = 0.0
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "reset":
                assert server.lag is not None
                server.lag.reset()
                stalls.clear()
                cpu0, wall0 = time.process_time(), time.monotonic()
            elif line == "report" or not line:
                assert server.lag is not None
                p50, p99, top = server.lag.percentiles(50, 99, 100)
                busy = (time.process_time() - cpu0) / max(
                    time.monotonic() - wall0, 1e-9
                )
                report = {
                    "p50": p50,
                    "p99": p99,
                    "max": top,
                    "frames": server.lag.count,
                    "cpu": busy,
                    "live": server.live,
                    "vad_chunks": engine.batcher.chunks_run if engine.batcher else None,
                    "stall_p99": float(np.percentile(stalls, 99)) if stalls else 0.0,
                }
                watcher.cancel()
                print("REPORT " + json.dumps(report), flush=True)
                return


# The carrier process: every stream driven from one paced loop.


def frame_texts(pcm: np.ndarray) -> list[str]:
    from mediaserver.codecs.g711 import pcm_to_ulaw

    law = pcm_to_ulaw(pcm)
    return [
        base64.b64encode(law[i : i + 160]).decode()
        for i in range(0, len(law) - 159, 160)
    ]


def call_audio(
    scenario: str, calls: int, seconds: float
) -> list[tuple[int, list[str]]]:
    """Per call: the tick its media starts at, and its frames."""
    frames = int(seconds * 50)
    if scenario == "busy":
        speech = np.resize(read_wav(default_corpus_dir() / AUDIO), frames * 160)
        shared = frame_texts(speech)
        return [(0, shared) for _ in range(calls)]
    entries = [e for e in load_manifest() if e.label in ("machine", "human")]
    texts = [frame_texts(read_wav(e.path)) for e in entries]
    stagger = frames // 2
    return [(i * stagger // calls, texts[i % len(texts)]) for i in range(calls)]


async def open_stream(url: str, secret: str) -> tuple[ClientConnection, str]:
    ws = await connect(url, compression=None, max_queue=None)
    sid = "MZ" + uuid.uuid4().hex
    token = tokens.issue(secret.encode(), uuid.uuid4().hex)
    await ws.send(
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    )
    start = {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": sid,
        "start": {
            "streamSid": sid,
            "callSid": "CA" + uuid.uuid4().hex,
            "tracks": ["inbound"],
            "mediaFormat": {
                "encoding": "audio/x-mulaw",
                "sampleRate": 8000,
                "channels": 1,
            },
            "customParameters": {"token": token},
        },
    }
    await ws.send(json.dumps(start))
    return ws, sid


async def clients(
    url: str, secret: str, calls: int, seconds: float, scenario: str
) -> None:
    audio = call_audio(scenario, calls, seconds)
    silence = base64.b64encode(b"\xff" * 160).decode()
    streams: list[tuple[ClientConnection, str]] = []
    for first in range(0, calls, 50):  # stay under the listen backlog
        batch = [open_stream(url, secret) for _ in range(first, min(calls, first + 50))]
        streams.extend(await asyncio.gather(*batch))
    print("READY", flush=True)

    # Four phases 5 ms apart, so that frames do not all leave in one burst.
    calls_of = [(ws, sid, *audio[i]) for i, (ws, sid) in enumerate(streams)]
    groups = [calls_of[p::4] for p in range(4)]
    late: list[float] = []
    frames = int(seconds * 50)
    start = time.monotonic() + 0.05
    for n in range(frames):
        for phase, group in enumerate(groups):
            due = start + n * 0.02 + phase * 0.005
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(max(0.0, -delay) * 1000)
            for ws, sid, offset, texts in group:
                k = n - offset
                if k < 0 or ws.state is not State.OPEN:
                    continue
                payload = texts[k] if k < len(texts) else silence
                # A call the server ended (a SIT tone: end_call) just stops.
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(
                        f'{{"event":"media","sequenceNumber":"{k + 2}","media":'
                        f'{{"track":"inbound","chunk":"{k + 1}","timestamp":"{k * 20}",'
                        f'"payload":"{payload}"}},"streamSid":"{sid}"}}'
                    )
        if n == 100:
            print("WARM", flush=True)
    p50, p99 = np.percentile(late, [50, 99])
    print("CLIENT " + json.dumps({"late_p50": p50, "late_p99": p99}), flush=True)
    for ws, sid in streams:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {}}))
    await asyncio.gather(*(ws.close() for ws, _ in streams))


# Per-frame CPU cost, in process (robust on a shared machine: best of repeats).


class _NullCarrier:
    carrier = "twilio"

    def encode_media(self, payload: bytes) -> bytes:
        return b""

    def encode_mark(self, name: str) -> bytes:
        return b""

    def encode_clear(self) -> bytes:
        return b""

    async def send(self, message: bytes) -> None:
        pass

    async def close(self, code: int, reason: str) -> None:
        pass


async def frame_costs(frames: int = 1500, repeats: int = 3) -> dict[str, float]:
    """Microseconds of server CPU per inbound frame, after the socket read."""
    from mediaserver.agent.client import AgentLinkConfig
    from mediaserver.media_amd import AmdEngine
    from mediaserver.session import CallSession
    from mediaserver.transports.common import Encoding, MediaBody, Started
    from mediaserver.transports.twilio import TwilioCodec

    texts = frame_texts(np.resize(read_wav(default_corpus_dir() / AUDIO), frames * 160))
    messages = [
        f'{{"event":"media","sequenceNumber":"{k + 2}","media":{{"track":"inbound",'
        f'"chunk":"{k + 1}","timestamp":"{k * 20}","payload":"{t}"}},"streamSid":"MZ"}}'
        for k, t in enumerate(texts)
    ]
    inline, batched = AmdEngine(), AmdEngine(batched=True)
    inline.warm_up()
    started = Started(
        stream_id="MZ",
        provider_call_id="CA",
        encoding=Encoding.PCMU,
        token=None,
        custom_parameters={},
    )

    async def run(
        engine: AmdEngine | None, amd: AmdSettings, calls: int, count: int
    ) -> float:
        codec = TwilioCodec()
        sessions = [
            CallSession(
                plan=CallPlan(
                    call_id=f"c{i}",
                    campaign_id="bench",
                    conversation_id="v",
                    agent_url="",
                    amd=amd,
                ),
                started=started,
                carrier=_NullCarrier(),
                observer=NullObserver(),  # type: ignore[arg-type]
                agent_config=AgentLinkConfig(secret=b"x"),
                amd=engine,
            )
            for i in range(calls)
        ]
        batcher = engine.batcher if engine is not None else None
        t0 = time.process_time()
        for message in messages[:count]:
            for session in sessions:
                body = codec.decode(message)
                assert isinstance(body, MediaBody)
                await session.on_media(body.chunk, body.payload)
            if batcher is not None:
                batcher.run()  # one tick: every call's chunks in one inference
        spent = time.process_time() - t0
        for session in sessions:
            await session.end("user_hangup", close_carrier=False)
        return spent / (count * calls) * 1e6

    best: dict[str, float] = {}
    cases = (
        ("no AMD (after the verdict)", None, AmdSettings(enabled=False), 1, frames),
        ("AMD inline VAD", inline, BUSY_AMD, 1, frames),
        ("AMD batched VAD, 100 calls", batched, BUSY_AMD, 100, frames // 10),
    )
    for _ in range(repeats):
        for name, engine, amd, calls, count in cases:
            cost = await run(engine, amd, calls, count)
            best[name] = min(best.get(name, cost), cost)
    return best


# The orchestrator.


PRIORITY = 0  # --nice: a negative value lifts both processes over other load


def spawn(args: list[str], core: int) -> subprocess.Popen[str]:
    def pin() -> None:
        os.sched_setaffinity(0, {core})
        if PRIORITY:
            os.nice(PRIORITY)

    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.capacity", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pin,
    )


def expect(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"benchmark subprocess ended before {prefix!r}")


def one_run(
    mode: str, scenario: str, calls: int, seconds: float
) -> dict[str, float | str]:
    secret = uuid.uuid4().hex
    server = spawn(["_serve", secret, mode, scenario], core=0)
    try:
        port = int(expect(server, "PORT "))
        url = f"ws://127.0.0.1:{port}/media/twilio"
        args = ["_clients", url, secret, str(calls), str(seconds), scenario]
        client = spawn(args, core=1)
        expect(client, "WARM")
        assert server.stdin is not None
        server.stdin.write("reset\n")
        server.stdin.flush()
        client_report = json.loads(expect(client, "CLIENT "))
        server.stdin.write("report\n")
        server.stdin.flush()
        report = json.loads(expect(server, "REPORT "))
        client.wait(timeout=60)
    finally:
        server.kill()
        server.wait()
    return {**report, **client_report, "mode": mode, "calls": calls}


def main(argv: list[str]) -> int:
    if argv[:1] == ["_serve"]:
        asyncio.run(serve(argv[1], argv[2] == "batched", argv[3]))
        return 0
    if argv[:1] == ["_clients"]:
        asyncio.run(clients(argv[1], argv[2], int(argv[3]), float(argv[4]), argv[5]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity")
    parser.add_argument("--calls", default="100,200,300,400,500,600")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", default="inline,batched")
    parser.add_argument("--scenarios", default="busy,calls")
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--nice", type=int, default=0, help="e.g. -10 (needs root)")
    args = parser.parse_args(argv)
    global PRIORITY
    PRIORITY = args.nice
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores (server on one, carrier side on the other)")
        return 2

    costs = asyncio.run(frame_costs())
    print("server CPU per inbound frame, after the socket read (best of 3):")
    for name, us in costs.items():
        # Add the websockets receive path (~24 us a message, DESIGN.md).
        per_call = (us + WS_RECV_US) * 50 / 1e6
        print(f"  {name:<28} {us:7.1f} us  -> {1 / per_call:6.0f} calls per core")
    print(
        f"  (calls per core = 1 s / (50 x (cost + {WS_RECV_US:g} us websockets recv)))"
    )
    print()
    if args.cost_only:
        return 0
    print(f"{args.seconds:g} s per run; frame lag in ms; cpu = server core busy share")
    print(
        f"{'mode':<8} {'scenario':<8} {'calls':>6} {'p50':>7} {'p99':>7} "
        f"{'max':>7} {'cpu':>5} {'stall p99':>9} {'client p99':>10}  verdict"
    )
    best: dict[str, int] = {}
    runs = [(m, s) for s in args.scenarios.split(",") for m in args.modes.split(",")]
    for mode, scenario in runs:
        for calls in (int(c) for c in args.calls.split(",")):
            r = one_run(mode, scenario, calls, args.seconds)
            client_ok = float(r["late_p99"]) < 5.0
            ok = float(r["p99"]) < TARGET_P99_MS
            key = f"{mode}/{scenario}"
            if ok and client_ok:
                best[key] = max(best.get(key, 0), calls)
            verdict = "ok" if ok else "behind"
            if not client_ok:
                verdict += " (client lagged)"
            print(
                f"{mode:<8} {scenario:<8} {calls:>6} {float(r['p50']):>7.1f} "
                f"{float(r['p99']):>7.1f} {float(r['max']):>7.1f} "
                f"{float(r['cpu']):>5.2f} {float(r['stall_p99']):>9.1f} "
                f"{float(r['late_p99']):>10.1f}  {verdict}"
            )
            if not ok:
                break
    print()
    for mode, calls in best.items():
        print(
            f"{mode}: {calls} calls in real time on one core "
            f"(target >= {TARGET_CALLS}, p99 < {TARGET_P99_MS:g} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
