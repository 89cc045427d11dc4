"""AMD accuracy and latency through the real WebSocket path.

    .venv/bin/python -m benchmarks.amd_ws [folder] [--speed 1] [--concurrency 16]
        [--batched]

Every recording of a labelled folder (default: the corpus) is played as a
Twilio media stream into the media server, with the reference agent on the
other side, exactly as in production: base64 JSON frames, the token check,
the session, the AMD pipeline, the agent link. Prints the corpus demo's
table and summary, then the distribution of verdict times and of the wall
delay between the frame that settled a verdict leaving the carrier and the
agent holding the verdict. Run at --speed 1 for honest wall delays.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

from mediaserver.corpus_demo import CallResult, print_report, run_corpus_demo
from mediaserver.media_amd import AmdEngine


def distribution(name: str, values: list[float]) -> None:
    if not values:
        print(f"{name}: no data")
        return
    qs = np.percentile(values, [0, 50, 90, 95, 99, 100])
    cells = ", ".join(
        f"{label} {v:.0f}"
        for label, v in zip(("min", "p50", "p90", "p95", "p99", "max"), qs, strict=True)
    )
    print(f"{name} (ms, n={len(values)}): {cells}")


async def run(
    folder: Path | None, speed: float, concurrency: int, batched: bool
) -> None:
    engine = AmdEngine(batched=batched)
    started = time.monotonic()
    results = await run_corpus_demo(
        folder, speed, concurrency=concurrency, engine=engine
    )
    print_report(results, wall_s=time.monotonic() - started)
    print()
    scored: list[CallResult] = [r for r in results if r.scored]
    for label in ("human", "machine"):
        times = [
            float(r.verdict_ms)
            for r in scored
            if r.label == label and r.verdict_ms is not None
        ]
        distribution(f"{label} verdict time after answer", times)
    delivery = [r.delivery_ms for r in results if r.delivery_ms is not None]
    distribution("verdict delivery, frame sent -> agent has it", delivery)
    mode = "batched" if batched else "inline"
    print(f"VAD {mode}, speed x{speed:g}, {concurrency} calls at once")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.amd_ws")
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batched", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(run(args.folder, args.speed, args.concurrency, args.batched))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
