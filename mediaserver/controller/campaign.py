"""Campaigns: the configuration template every call is launched with.

A `Campaign` is a frozen msgspec Struct. `parse_campaign` turns builtins
(JSON, TOML) into one and `validate_campaign` checks what types cannot say;
both raise `ValidationError` whose `errors` name each bad field by its
dotted path, e.g. `caller_id.overrides[2].prefix` or `variables[1].name`.
Validation lives in `campaign_rules`; this module holds the shapes.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec

from mediaserver.amd.settings import AmdSettings
from mediaserver.errors import ConfigError, ValidationError

PROVIDERS = ("simulated", "twilio", "telnyx")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class VariableType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"  # ISO 8601 calendar date, kept as "YYYY-MM-DD" text


class CallingNumber(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A business number we call from (the seed's calling number)."""

    id: str
    number: str  # E.164
    provider: str = ""  # empty: the campaign's provider


class CallerIdOverride(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Use `number` for destinations starting with `prefix` (e.g. "+968")."""

    prefix: str
    number: CallingNumber


class CallerIdPolicy(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    default: CallingNumber
    overrides: list[CallerIdOverride] = []


class RetryPolicy(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Which outcomes are retried; `max_retries` caps retries per contact."""

    on_busy: bool = True
    on_declined: bool = False
    on_no_answer: bool = True
    max_retries: int = 2  # retries after the first attempt, across all triggers
    delay_s: int = 3600


class CallingWindow(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Local hours a contact may be called, in the contact's time zone.

    `end` may be "24:00"; `start` later than `end` spans midnight.
    """

    start: str = "09:00"
    end: str = "20:00"
    days: list[str] = msgspec.field(default_factory=lambda: list(WEEKDAYS))


class VariableSpec(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A declared variable (used by the script) or metadata key (attached only)."""

    name: str
    type: VariableType = VariableType.STRING
    required: bool = False
    default: str | int | float | bool | None = None
    description: str = ""


class Campaign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str = ""  # assigned by the store on create when empty
    name: str
    version: int = 0  # assigned by the store: 1, 2, ... per saved update
    provider: str = "simulated"
    agent_url: str
    opening_script: str = ""
    leave_message_script: str = ""
    inject_numbers: bool = False
    default_region: str = "US"  # how numbers without a + are read
    caller_id: CallerIdPolicy
    retry: RetryPolicy = RetryPolicy()
    amd: AmdSettings = AmdSettings()
    variables: list[VariableSpec] = []
    metadata: list[VariableSpec] = []
    # In the actions module's format (`Tool`, `Action`, `PostAnalysisTemplate`),
    # kept as plain data here and checked together by its `validate_actions`.
    # An action's `tool` is a tool definition or the name of one in `tools`.
    tools: list[dict[str, Any]] = []
    post_analysis: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = []
    max_concurrent_calls: int = 10
    calls_per_second: float = 1.0
    calling_window: CallingWindow = msgspec.field(default_factory=CallingWindow)
    ring_timeout_s: int = 30
    max_call_s: int = 600


_MSGSPEC_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def parse_campaign(data: dict[str, Any]) -> Campaign:
    """Build and validate a campaign from builtins (decoded JSON or TOML).

    Raises:
        ValidationError: a field has the wrong type or breaks a rule.
    """
    try:
        campaign = msgspec.convert(data, Campaign)
    except msgspec.ValidationError as exc:
        raise ValidationError(_msgspec_errors(exc)) from exc
    return validate_campaign(campaign)


def _msgspec_errors(exc: msgspec.ValidationError, base: str = "") -> dict[str, str]:
    """msgspec names one bad field as `$.a.b[2]`; we name it `a.b[2]`."""
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    if match is None:
        return {base or "campaign": message}
    path = (base + match.group("path")).removeprefix(".") or "campaign"
    return {path: message[: match.start()]}


def validate_campaign(campaign: Campaign) -> Campaign:
    """Check every rule; return the campaign with empty providers filled in.

    Raises:
        ValidationError: naming every bad field, not only the first.
    """
    from mediaserver.controller.campaign_rules import campaign_errors

    errors = campaign_errors(campaign)
    errors.update(_actions_errors(campaign))
    if errors:
        raise ValidationError(errors)
    return _fill_providers(campaign)


def _actions_errors(campaign: Campaign) -> dict[str, str]:
    """Have the actions module check tools, actions and post_analysis together.

    Tools are checked first, so an action naming a tool by name is checked
    against that tool's schema; each action is checked on its own, so one
    malformed action does not hide the faults of the others.
    """
    if not (campaign.actions or campaign.tools or campaign.post_analysis):
        return {}
    from mediaserver.controller import actions as module

    errors, tools = _tool_registry(campaign)
    errors.update(module.validate_actions(campaign, tools))
    return errors


def _tool_registry(campaign: Campaign) -> tuple[dict[str, str], dict[str, Any]]:
    """The campaign's tools by name, and the faults of their definitions."""
    from mediaserver.controller.tools import Tool, tool_faults

    errors: dict[str, str] = {}
    tools: dict[str, Tool] = {}
    for index, item in enumerate(campaign.tools):
        path = f"tools[{index}]"
        try:
            tool = msgspec.convert(item, Tool)
        except msgspec.ValidationError as exc:
            errors.update(_msgspec_errors(exc, path))
            continue
        errors.update(tool_faults(tool, path))
        if tool.name in tools:
            errors[f"{path}.name"] = f"another tool is already named {tool.name!r}"
        tools[tool.name] = tool
    return errors, tools


def actions_view(campaign: Campaign) -> SimpleNamespace:
    """`actions` (tools named by name resolved) and `post_analysis`, typed.

    Raises:
        ValidationError: they do not fit those types (named by path).
    """
    from mediaserver.controller import actions as module

    _, tools = _tool_registry(campaign)
    resolved, faults = module.resolve_actions(campaign, tools)
    if faults:
        raise ValidationError(faults)
    typed = [resolved[index] for index in sorted(resolved)]
    template = None
    if campaign.post_analysis is not None:
        kind = module.PostAnalysisTemplate
        try:
            template = msgspec.convert(campaign.post_analysis, kind)
        except msgspec.ValidationError as exc:
            raise ValidationError(_msgspec_errors(exc, "post_analysis")) from exc
    return SimpleNamespace(
        id=campaign.id, version=campaign.version, actions=typed, post_analysis=template
    )


def _fill_providers(campaign: Campaign) -> Campaign:
    def fill(number: CallingNumber) -> CallingNumber:
        if number.provider:
            return number
        return msgspec.structs.replace(number, provider=campaign.provider)

    policy = campaign.caller_id
    overrides = [
        msgspec.structs.replace(o, number=fill(o.number)) for o in policy.overrides
    ]
    caller_id = CallerIdPolicy(default=fill(policy.default), overrides=overrides)
    return msgspec.structs.replace(campaign, caller_id=caller_id)


def campaign_to_builtins(campaign: Campaign) -> dict[str, Any]:
    """Plain JSON-ready data, the inverse of `parse_campaign`."""
    data: dict[str, Any] = msgspec.to_builtins(campaign)
    return data


def load_campaign_toml(path: str | Path) -> Campaign:
    """Read a campaign file (see config/example-campaign.toml).

    Raises:
        ConfigError: the file is missing or is not TOML.
        ValidationError: the campaign in it is invalid.
    """
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read campaign file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"campaign file {path} is not valid TOML: {exc}") from exc
    return parse_campaign(data)
