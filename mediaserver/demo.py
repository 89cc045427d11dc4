"""The demo: `python -m mediaserver.demo [folder] [options]` (what `make demo` runs).

Part 1, corpus (mediaserver/corpus_demo.py): the media server and the
reference agent start on 127.0.0.1, every recording of the corpus (or of
`folder`) is played into the server as a Twilio media stream, and a table
of verdicts, timings and final actions is printed, then accuracy and
latency percentiles. Real time by default; `--speed 10` plays ten times
faster (AMD timings are stream time, so they do not change).

Part 2, campaign (mediaserver/campaign_demo.py): the whole service runs a
campaign created through the HTTP API from a CSV of contacts, with
retries, signed webhooks to a local receiver, transcripts and post-call
analysis; `--provider twilio|telnyx` runs it through the carrier fakes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from mediaserver.corpus import default_corpus_dir
from mediaserver.corpus_demo import print_report, run_corpus_demo
from mediaserver.errors import CallwrightError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mediaserver.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    parser.add_argument("--part", choices=["all", "corpus", "campaign"], default="all")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="corpus playback speed-up"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="calls at once")
    parser.add_argument(
        "--campaign-speed", type=float, default=8.0, help="campaign playback speed-up"
    )
    parser.add_argument(
        "--provider", choices=["simulated", "twilio", "telnyx"], default="simulated"
    )
    parser.add_argument(
        "--log",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level",
    )
    return parser.parse_args(argv)


async def _demo(args: argparse.Namespace, folder: Path) -> int:
    if args.part in ("all", "corpus"):
        print(
            f"== Part 1: every recording as a call ({folder}, speed "
            f"x{args.speed:g}, {args.concurrency} calls at once)\n"
        )
        started = time.monotonic()
        results = await run_corpus_demo(
            folder, args.speed, concurrency=args.concurrency
        )
        print_report(results, wall_s=time.monotonic() - started)
    if args.part in ("all", "campaign"):
        from mediaserver.campaign_demo import run_campaign_demo

        print(
            f"\n== Part 2: a campaign over the {args.provider} carrier "
            f"(speed x{args.campaign_speed:g})\n"
        )
        await run_campaign_demo(folder, args.campaign_speed, provider=args.provider)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log, format="%(levelname)s %(name)s: %(message)s")
    folder = args.folder or default_corpus_dir()
    if not folder.is_dir():
        print(
            f"error: no corpus folder at {folder} (name one, or set CALLWRIGHT_CORPUS)",
            file=sys.stderr,
        )
        return 2
    if args.speed <= 0 or args.campaign_speed <= 0 or args.concurrency < 1:
        print("error: speeds must be > 0 and --concurrency >= 1", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        return run(_demo(args, folder))
    except CallwrightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
