"""The demo: `python -m mediaserver.demo [folder] [--speed N] [--concurrency N]`.

Corpus mode (mediaserver/corpus_demo.py): the media server and the
reference agent start on 127.0.0.1, every recording of the corpus (or of
`folder`) is played into the server as a Twilio media stream, and a table
of verdicts, timings and final actions is printed, then accuracy and
latency percentiles. Real time by default; `--speed 10` plays ten times
faster (AMD timings are stream time, so they do not change).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from mediaserver.corpus import default_corpus_dir
from mediaserver.corpus_demo import main_async


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mediaserver.demo")
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed-up")
    parser.add_argument("--concurrency", type=int, default=8, help="calls at once")
    parser.add_argument("--log", default="WARNING", help="log level")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    folder = args.folder or default_corpus_dir()
    if not folder.is_dir():
        print(
            f"error: no corpus folder at {folder} (set CALLWRIGHT_CORPUS)",
            file=sys.stderr,
        )
        return 2
    if args.speed <= 0 or args.concurrency < 1:
        print("error: --speed must be > 0 and --concurrency >= 1", file=sys.stderr)
        return 2
    print(f"corpus {folder}, speed x{args.speed:g}, {args.concurrency} calls at once")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(folder, args.speed, args.concurrency))
    return uvloop.run(main_async(folder, args.speed, args.concurrency))


if __name__ == "__main__":
    raise SystemExit(main())
