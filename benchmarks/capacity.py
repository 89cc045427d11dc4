"""How many concurrent calls in AMD one core keeps in real time, over real WebSockets.

    .venv/bin/python -m benchmarks.capacity [--calls 100,200,400] [--seconds 10]
        [--modes inline,batched]

For each mode and call count, the media server runs in a subprocess pinned
to core 0 and the carrier side in another pinned to core 1. Each call is a
Twilio media stream playing a speech recording in real time, and AMD is set
never to decide, so every call runs the VAD for the whole run (the worst
case: real calls stop the VAD at their verdict). Calls have no agent.

The server records, for every inbound frame, how late its processing
finished against the frame's stream time (first frame = 0): the frame lag.
The client reports how late its own sends were; a run where the client
lagged is marked, since then the server was not the limit.
Targets (DESIGN.md): >= 500 calls, p99 frame lag < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from mediaserver import tokens
from mediaserver.amd.settings import AmdSettings
from mediaserver.corpus import default_corpus_dir, read_wav
from mediaserver.plan import CallPlan

AUDIO = "speech/pyannote_phone_conversation_30s.wav"
TARGET_CALLS = 500
TARGET_P99_MS = 20.0
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

    async def plan_for(self, call_id: str) -> CallPlan | None:
        return CallPlan(
            call_id=call_id,
            campaign_id="capacity",
            conversation_id=call_id,
            agent_url="",
            amd=BUSY_AMD,
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


async def serve(secret: str, batched: bool) -> None:
    from mediaserver.media_amd import AmdEngine
    from mediaserver.media_server import MediaServer, MediaServerSettings

    engine = AmdEngine(batched=batched)
    engine.warm_up()
    server = MediaServer(
        MediaServerSettings(secret=secret, measure_lag=True, start_timeout_s=30),
        plans=AnyPlans(),
        observer=NullObserver(),  # type: ignore[arg-type]
        amd=engine,
    )
    loop = asyncio.get_running_loop()
    async with server:
        print(f"PORT {server.port}", flush=True)
        cpu0 = wall0 = 0.0
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "reset":
                assert server.lag is not None
                server.lag.reset()
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
                }
                print("REPORT " + json.dumps(report), flush=True)
                return


# The carrier process: every stream driven from one paced loop.


def frame_texts(seconds: float) -> list[str]:
    from mediaserver.codecs.g711 import pcm_to_ulaw

    pcm = read_wav(default_corpus_dir() / AUDIO)
    need = int(seconds * 8000) + 8000
    pcm = np.resize(pcm, need)
    law = pcm_to_ulaw(pcm)
    return [
        base64.b64encode(law[i : i + 160]).decode() for i in range(0, need - 159, 160)
    ]


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


async def clients(url: str, secret: str, calls: int, seconds: float) -> None:
    payloads = frame_texts(seconds)
    streams: list[tuple[ClientConnection, str]] = []
    for first in range(0, calls, 50):  # stay under the listen backlog
        batch = [open_stream(url, secret) for _ in range(first, min(calls, first + 50))]
        streams.extend(await asyncio.gather(*batch))
    print("READY", flush=True)

    # Four phases 5 ms apart, so that frames do not all leave in one burst.
    groups = [streams[p::4] for p in range(4)]
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
            payload = payloads[n]
            for ws, sid in group:
                await ws.send(
                    f'{{"event":"media","sequenceNumber":"{n + 2}","media":'
                    f'{{"track":"inbound","chunk":"{n + 1}","timestamp":"{n * 20}",'
                    f'"payload":"{payload}"}},"streamSid":"{sid}"}}'
                )
        if n == 100:
            print("WARM", flush=True)
    p50, p99 = np.percentile(late, [50, 99])
    print("CLIENT " + json.dumps({"late_p50": p50, "late_p99": p99}), flush=True)
    for ws, sid in streams:
        await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {}}))
    await asyncio.gather(*(ws.close() for ws, _ in streams))


# The orchestrator.


def spawn(args: list[str], core: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.capacity", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )


def expect(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"benchmark subprocess ended before {prefix!r}")


def one_run(mode: str, calls: int, seconds: float) -> dict[str, float | str]:
    secret = uuid.uuid4().hex
    server = spawn(["_serve", secret, mode], core=0)
    try:
        port = int(expect(server, "PORT "))
        url = f"ws://127.0.0.1:{port}/media/twilio"
        client = spawn(["_clients", url, secret, str(calls), str(seconds)], core=1)
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
        asyncio.run(serve(argv[1], argv[2] == "batched"))
        return 0
    if argv[:1] == ["_clients"]:
        asyncio.run(clients(argv[1], argv[2], int(argv[3]), float(argv[4])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity")
    parser.add_argument("--calls", default="100,200,300,400,500,600")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", default="inline,batched")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores (server on one, carrier side on the other)")
        return 2

    print(f"each call: {AUDIO}, real time, AMD busy all along, {args.seconds:g} s")
    print(
        f"{'mode':<8} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'cpu':>5} {'client p99':>10}  verdict"
    )
    best: dict[str, int] = {}
    for mode in args.modes.split(","):
        for calls in (int(c) for c in args.calls.split(",")):
            r = one_run(mode, calls, args.seconds)
            client_ok = float(r["late_p99"]) < 5.0
            ok = float(r["p99"]) < TARGET_P99_MS
            if ok and client_ok:
                best[mode] = max(best.get(mode, 0), calls)
            verdict = "ok" if ok else "behind"
            if not client_ok:
                verdict += " (client lagged)"
            print(
                f"{mode:<8} {calls:>6} {float(r['p50']):>8.1f} {float(r['p99']):>8.1f} "
                f"{float(r['max']):>8.1f} {float(r['cpu']):>5.2f} "
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
