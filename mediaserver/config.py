"""Service settings: a TOML file, then environment overrides, validated at load.

Every leaf key has an environment name, `CALLWRIGHT_<SECTION>_<KEY>`
(`CALLWRIGHT_DATABASE_URL`, `CALLWRIGHT_CARRIERS_TWILIO_AUTH_TOKEN`), and a
few have short aliases (`CALLWRIGHT_PUBLIC_URL`, `CALLWRIGHT_TWILIO_...`).
Lists come from the environment comma-separated (`CALLWRIGHT_API_KEYS=a,b`).
Secrets are `Secret` objects whose repr and str are masked: only `reveal()`
gives the value, so a settings object can be logged whole.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from mediaserver.errors import ConfigError

logger = logging.getLogger(__name__)

ENV_PREFIX = "CALLWRIGHT_"
# Variables with our prefix that other tools read, not settings.
OTHER_ENV = frozenset(
    {
        "CALLWRIGHT_CORPUS",  # the labelled corpus folder
        "CALLWRIGHT_SECRET",  # media token key of the standalone servers
        "CALLWRIGHT_AGENT_PORT",  # `callwright agent`
        "CALLWRIGHT_WEBRTC_HOST",  # the WebRTC signalling server
        "CALLWRIGHT_WEBRTC_PORT",
        "CALLWRIGHT_ICE_HOSTS",
        "CALLWRIGHT_SHARED",  # tests: the shared folder
        "CALLWRIGHT_PG_URL",  # tests: a PostgreSQL to run against
        "CALLWRIGHT_PG_REQUIRED",
    }
)
_warned: set[str] = set()  # unknown variables already reported by this process


class Secret:
    """A configuration secret; masked in repr and str, read with `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


class ServerSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # how carriers reach us; empty: http://host:port


class MediaSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    host: str = "127.0.0.1"
    port: int = 8765  # the media WebSocket listener
    public_url: str = ""  # ws(s):// URL carriers stream to; empty: ws://host:port
    secret: Secret = Secret("")  # signs per-call media tokens


class DatabaseSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    url: str = "sqlite+aiosqlite:///var/callwright.sqlite3"


class ApiSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    keys: list[Secret] = []


class TwilioSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    account_sid: str = ""
    auth_token: Secret = Secret("")
    # Test only: where the SDK's api.twilio.com requests go (a loopback fake).
    # Empty in production: the official API.
    api_base: str = ""


class TelnyxSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    api_key: Secret = Secret("")
    public_key: str = ""  # base64 Ed25519 key that signs webhooks
    connection_id: str = ""
    # Test only: where Call Control requests go (a loopback fake). Empty in
    # production: the official API.
    api_base: str = ""


class CarrierSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    twilio: TwilioSettings = TwilioSettings()
    telnyx: TelnyxSettings = TelnyxSettings()


class LlmSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    base_url: str = ""  # any OpenAI-compatible server; empty: LLM features off
    api_key: Secret = Secret("")
    model: str = "gpt-4o-mini"
    audio_model: str = "gpt-4o-audio-preview"


class WebhookSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    signing_secret: Secret = Secret("")


class SimulatedSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    # Folders the simulated carrier may read `answer:<wav>` recordings from;
    # empty: the labelled corpus folder (CALLWRIGHT_CORPUS or ../shared/corpus).
    recordings_dirs: list[str] = []


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerSettings = ServerSettings()
    media: MediaSettings = MediaSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    carriers: CarrierSettings = CarrierSettings()
    llm: LlmSettings = LlmSettings()
    webhooks: WebhookSettings = WebhookSettings()
    simulated: SimulatedSettings = SimulatedSettings()

    @property
    def http_base_url(self) -> str:
        """Where carriers reach the HTTP API (callbacks)."""
        base = self.server.public_url or f"http://{self.server.host}:{self.server.port}"
        return base.rstrip("/")

    @property
    def media_base_url(self) -> str:
        """Where carriers open media WebSockets."""
        base = self.media.public_url or f"ws://{self.media.host}:{self.media.port}"
        return base.rstrip("/")


# Short names people reach for first; each maps to a dotted key.
ENV_ALIASES = {
    "CALLWRIGHT_PUBLIC_URL": "server.public_url",
    "CALLWRIGHT_HOST": "server.host",
    "CALLWRIGHT_PORT": "server.port",
    "CALLWRIGHT_TWILIO_ACCOUNT_SID": "carriers.twilio.account_sid",
    "CALLWRIGHT_TWILIO_AUTH_TOKEN": "carriers.twilio.auth_token",
    "CALLWRIGHT_TELNYX_API_KEY": "carriers.telnyx.api_key",
    "CALLWRIGHT_TELNYX_PUBLIC_KEY": "carriers.telnyx.public_key",
    "CALLWRIGHT_TELNYX_CONNECTION_ID": "carriers.telnyx.connection_id",
    "CALLWRIGHT_WEBHOOK_SECRET": "webhooks.signing_secret",
}


def _leaf_keys(struct_type: type[msgspec.Struct], prefix: str = "") -> dict[str, type]:
    """Dotted key -> annotated type, for every leaf field of the settings tree."""
    keys: dict[str, type] = {}
    for field in msgspec.structs.fields(struct_type):
        dotted = f"{prefix}{field.name}"
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            keys.update(_leaf_keys(kind, dotted + "."))
        else:
            keys[dotted] = kind
    return keys


LEAF_KEYS = _leaf_keys(Settings)


def env_name(dotted: str) -> str:
    """`carriers.twilio.auth_token` -> `CALLWRIGHT_CARRIERS_TWILIO_AUTH_TOKEN`."""
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Dotted key -> (variable name, raw text) for every override present."""
    by_name = {env_name(key): key for key in LEAF_KEYS}
    by_name.update(ENV_ALIASES)
    found: dict[str, tuple[str, str]] = {}
    for name, dotted in by_name.items():
        if name in env:
            found[dotted] = (name, env[name])
    _warn_unknown(env, by_name)
    return found


def _warn_unknown(env: Mapping[str, str], known: Mapping[str, str]) -> None:
    """Warn once about each CALLWRIGHT_ variable that names no setting."""
    for name in env:
        if not name.startswith(ENV_PREFIX) or name in known or name in OTHER_ENV:
            continue
        if name in _warned:
            continue
        _warned.add(name)
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        logger.warning(
            "environment variable %s matches no setting and is ignored%s", name, hint
        )


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: `{part}` must be a table")
        node = child
    node[leaf] = value


def _env_value(dotted: str, raw: str) -> Any:
    """Environment text -> the shape the field wants (lists comma-separated)."""
    kind = LEAF_KEYS[dotted]
    if getattr(kind, "__origin__", None) is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Secret:
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return Secret(value)
    raise NotImplementedError(kind)


def _key_from_error(message: str) -> str:
    """Turn msgspec's `... - at `$.server.port`` into `server.port`."""
    marker = "- at `$."
    if marker in message:
        path = message.split(marker, 1)[1].rstrip("`")
        return path.replace("[", ".").replace("]", "")
    return "(top level)"


def _convert(tree: dict[str, Any], origin: str) -> Settings:
    try:
        return msgspec.convert(tree, Settings, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message = str(exc)
        key = _key_from_error(message)
        reason = message.split(" - at ", 1)[0]
        if "unknown field" in reason:
            # msgspec points at the table; name the stray key itself.
            stray = reason.split("`")[1] if "`" in reason else "?"
            key = stray if key == "(top level)" else f"{key}.{stray}"
            reason = "unknown key"
        raise ConfigError(f"{origin}: {key}: {reason}") from None


def _check(settings: Settings) -> None:
    """Rules a type cannot say; each error names its key."""
    errors: list[str] = []
    for dotted, port in (
        ("server.port", settings.server.port),
        ("media.port", settings.media.port),
    ):
        if not 0 <= port <= 65535:
            errors.append(f"{dotted}: {port} is not a TCP port (0-65535)")
    for dotted, url, schemes in (
        ("server.public_url", settings.server.public_url, ("http", "https")),
        ("media.public_url", settings.media.public_url, ("ws", "wss")),
        ("llm.base_url", settings.llm.base_url, ("http", "https")),
        (
            "carriers.twilio.api_base",
            settings.carriers.twilio.api_base,
            ("http", "https"),
        ),
        (
            "carriers.telnyx.api_base",
            settings.carriers.telnyx.api_base,
            ("http", "https"),
        ),
    ):
        if url and (urlsplit(url).scheme not in schemes or not urlsplit(url).netloc):
            errors.append(f"{dotted}: {url!r} is not a {'/'.join(schemes)} URL")
    scheme = urlsplit(settings.database.url).scheme
    if not scheme.startswith(("sqlite", "postgresql")):
        errors.append(
            f"database.url: scheme {scheme!r} is not supported "
            "(use sqlite+aiosqlite:/// or postgresql+asyncpg://)"
        )
    for index, key in enumerate(settings.api.keys):
        if len(key.reveal()) < 16:
            errors.append(f"api.keys.{index}: API keys need at least 16 characters")
    if errors:
        raise ConfigError("; ".join(errors))


def load_settings(
    path: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read `path` (TOML; none: defaults only), apply `env`, validate.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is wrong; the
            message names the key (and the variable, for an override).
    """
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        origin = str(path)
        try:
            tree = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{origin}: no such configuration file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{origin}: cannot read: {exc}") from exc

    # The file is checked alone first, so its errors are not blamed on the env.
    _convert(tree, origin)
    for dotted, (name, raw) in _env_overrides(env).items():
        _set_dotted(tree, dotted, _env_value(dotted, raw))
        try:
            _convert(tree, origin)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from environment variable {name})") from None

    settings = _convert(tree, origin)
    _check(settings)
    return settings
