"""The `callwright` command: `serve` runs the whole service; `config` checks one.

    callwright serve --config config/callwright.toml
    callwright config --config config/callwright.toml   # print it, secrets masked

SIGINT and SIGTERM stop the service cleanly: the API stops taking requests,
the dispatcher stops claiming, calls in progress are ended, the store closes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from mediaserver import __version__
from mediaserver.config import Settings, load_settings
from mediaserver.errors import CallwrightError, ConfigError
from mediaserver.logs import configure

DEFAULT_CONFIG = Path("config/callwright.toml")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callwright", description="Outbound calling engine for voice agents."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "run API, media server and dispatcher in one process"),
        ("config", "load and check the configuration, then print it (masked)"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"TOML file (default: {DEFAULT_CONFIG} when it exists)",
        )
        command.add_argument("--log-level", default="INFO")
    return parser


def _settings(path: Path | None) -> Settings:
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    settings = load_settings(path)
    if not settings.api.keys:
        raise ConfigError(
            "api.keys: no API key configured; set CALLWRIGHT_API_KEYS "
            "(comma-separated, 16+ characters each)"
        )
    return settings


async def _serve(settings: Settings) -> None:
    from mediaserver.service_main import Service, run_until_signalled

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_until_signalled(Service(settings), stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _run(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:  # not on Windows; the stdlib loop works, slower
        asyncio.run(_serve(settings))
    else:
        uvloop.run(_serve(settings))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure(args.log_level)
    try:
        settings = _settings(args.config)
        if args.command == "config":
            print(settings)
            return 0
        _run(settings)
    except ConfigError as exc:
        print(f"callwright: configuration error: {exc}", file=sys.stderr)
        return 2
    except CallwrightError as exc:
        print(f"callwright: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken
        print(f"callwright: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
