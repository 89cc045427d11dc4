"""The `callwright` command: `serve` runs the whole service; `config` checks one.

    callwright serve --config config/callwright.toml
    callwright config --config config/callwright.toml   # print it, secrets masked
    callwright agent --port 8766   # the reference agent runtime, to try things out

SIGINT and SIGTERM stop the service cleanly: the API stops taking requests,
the dispatcher stops claiming, calls in progress are ended, the store closes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import msgspec

from mediaserver import __version__
from mediaserver.config import Settings, load_settings
from mediaserver.errors import CallwrightError, ConfigError
from mediaserver.logs import configure

DEFAULT_CONFIG = Path("config/callwright.toml")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callwright", description="Outbound calling engine for voice agents."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "run API, media server and dispatcher in one process"),
        ("config", "load and check the configuration, then print it (masked)"),
        ("agent", "run the reference agent runtime (to try campaigns without yours)"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"TOML file (default: {DEFAULT_CONFIG} when it exists)",
        )
        command.add_argument(
            "--log-level",
            default="INFO",
            type=str.upper,
            choices=LOG_LEVELS,
            help="DEBUG, INFO, WARNING or ERROR (default INFO)",
        )
        if name == "agent":
            command.add_argument("--host", default="127.0.0.1")
            command.add_argument("--port", type=int, default=8766)
    return parser


def _settings(path: Path | None, *, need_api_key: bool = True) -> Settings:
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    settings = load_settings(path)
    if need_api_key and not settings.api.keys:
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


async def _agent(settings: Settings, host: str, port: int) -> None:
    from mediaserver.agent.reference import ReferenceAgent

    secret = settings.media.secret.reveal()
    if not secret:
        raise ConfigError(
            "media.secret: the agent checks the media server's per-call tokens "
            "with it; set CALLWRIGHT_MEDIA_SECRET for both commands"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ReferenceAgent(secret, host=host, port=port) as agent:
        print(f"reference agent listening: campaign agent_url = {agent.url}")
        await stop.wait()


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # not on Windows; the stdlib loop works, slower
        asyncio.run(main)
    else:
        uvloop.run(main)


def _print_settings(settings: Settings) -> None:
    """One line per section; secrets stay masked by their own repr."""
    for field in msgspec.structs.fields(settings):
        print(f"[{field.name}] {getattr(settings, field.name)!r}")


def _addresses(args: argparse.Namespace, settings: Settings) -> str:
    if args.command == "agent":
        return f"agent {args.host}:{args.port}"
    return (
        f"API {settings.server.host}:{settings.server.port}, "
        f"media {settings.media.host}:{settings.media.port}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure(args.log_level)
    settings: Settings | None = None
    try:
        settings = _settings(args.config, need_api_key=args.command == "serve")
        if args.command == "config":
            _print_settings(settings)
            return 0
        if args.command == "agent":
            _run(_agent(settings, args.host, args.port))
        else:
            _run(_serve(settings))
    except ConfigError as exc:
        print(f"callwright: configuration error: {exc}", file=sys.stderr)
        return 2
    except CallwrightError as exc:
        print(f"callwright: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken
        where = f" ({_addresses(args, settings)})" if settings else ""
        print(f"callwright: {exc}{where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
