"""Actions: a custom tool bound to one lifecycle event, and its validation.

An action's `mapping` fills each input of the tool's schema with either
one of the event's variables (a plain string, the variable's name) or a
constant (`{const = ...}` in TOML, `{"const": ...}` in JSON). A campaign
whose mapping names a variable the event does not carry, or leaves a
required input unfilled, is refused when it is saved: `validate_actions`
names every fault. The campaign's validator calls it.

This module also holds the campaign-facing post-analysis template types,
so that the campaign Struct can import them without the LLM client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from mediaserver.controller.events import (
    EVENT_VARIABLES,
    VARIABLE_TYPES,
    LifecycleEvent,
    VarType,
)
from mediaserver.controller.tools import (
    Tool,
    accepted_types,
    properties,
    required,
    schema_faults,
    tool_faults,
)
from mediaserver.errors import ValidationError

__all__ = [
    "Action",
    "Constant",
    "FieldSpec",
    "PostAnalysisTemplate",
    "Tool",
    "build_input",
    "resolve_actions",
    "resolve_template",
    "validate_actions",
]


class Constant(msgspec.Struct, frozen=True):
    """A fixed value for a tool input."""

    const: Any


class Action(msgspec.Struct, frozen=True, kw_only=True):
    event: str  # a LifecycleEvent value
    tool: Tool
    mapping: dict[str, str | Constant] = {}


FieldType = Literal["string", "number", "integer", "boolean", "date"]


class FieldSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One field the analysis extracts from a conversation."""

    name: str
    type: FieldType = "string"
    description: str = ""
    required: bool = True
    enum: list[str] | None = None


class PostAnalysisTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """What the model produces after a call: a summary, tags and fields."""

    name: str
    instructions: str = ""
    summary: bool = True
    tags: list[str] = []  # the allowed tags; the model picks from these only
    max_tags: int = 3
    fields: list[FieldSpec] = []


# JSON Schema types a variable's value can fill.
_FILLS: dict[VarType, set[str]] = {
    VarType.STRING: {"string"},
    VarType.DATETIME: {"string"},
    VarType.OBJECT: {"object"},
}


def _fills(variable: str) -> set[str]:
    if variable == "conversation_turns":  # the seed's "Object" is a JSON array
        return {"array"}
    return _FILLS[VARIABLE_TYPES[variable]]


def validate_actions(
    campaign: Any, tools: Mapping[str, Tool] | None = None
) -> dict[str, str]:
    """Every fault in a campaign's actions and post-analysis template.

    `campaign` is anything with `actions` and `post_analysis` attributes.
    An action's `tool` is a `Tool`, a tool definition (dict), or the name
    of a tool in `tools` or in the campaign's own `tools` list. Keys are
    field paths such as `actions[0].mapping.call_id`.
    """
    actions, faults = resolve_actions(campaign, tools)
    for i, action in actions.items():
        faults.update(action_faults(action, f"actions[{i}]"))
    try:
        template = resolve_template(campaign)
    except ValidationError as exc:
        faults.update(exc.errors)
    else:
        if template is not None:
            faults.update(template_faults(template, "post_analysis"))
    return faults


def resolve_actions(
    campaign: Any, tools: Mapping[str, Tool] | None = None
) -> tuple[dict[int, Action], dict[str, str]]:
    """The campaign's actions as `Action`s by index, and any that cannot be."""
    known = dict(tools or {})
    for item in getattr(campaign, "tools", None) or []:
        tool = item if isinstance(item, Tool) else _convert(item, Tool)
        if tool is not None:
            known[tool.name] = tool

    actions: dict[int, Action] = {}
    faults: dict[str, str] = {}
    for i, item in enumerate(getattr(campaign, "actions", None) or []):
        if isinstance(item, Action):
            actions[i] = item
            continue
        data = item if isinstance(item, dict) else msgspec.to_builtins(item)
        tool_ref = data.get("tool")
        if isinstance(tool_ref, str):
            if tool_ref not in known:
                faults[f"actions[{i}].tool"] = f"no custom tool named {tool_ref!r}"
                continue
            data = {**data, "tool": msgspec.to_builtins(known[tool_ref])}
        try:
            actions[i] = msgspec.convert(data, Action)
        except msgspec.ValidationError as exc:
            faults.update(_decode_fault(exc, f"actions[{i}]"))
    return actions, faults


def _decode_fault(exc: msgspec.ValidationError, prefix: str) -> dict[str, str]:
    """msgspec's "... - at `$.tool.url`" as {"<prefix>.tool.url": "..."}."""
    message, _, where = str(exc).partition(" - at `$")
    return {prefix + where.rstrip("`"): message}


def resolve_template(campaign: Any) -> PostAnalysisTemplate | None:
    """The campaign's post-analysis template, whatever shape it is kept in.

    Raises:
        ValidationError: the template is not in the template format.
    """
    raw = getattr(campaign, "post_analysis", None)
    if raw is None or isinstance(raw, PostAnalysisTemplate):
        return raw
    try:
        return msgspec.convert(raw, PostAnalysisTemplate)
    except msgspec.ValidationError as exc:
        raise ValidationError(_decode_fault(exc, "post_analysis")) from exc


def _convert(item: Any, kind: type[Tool]) -> Tool | None:
    try:
        return msgspec.convert(item, kind)
    except msgspec.ValidationError:
        return None


def action_faults(action: Action, prefix: str) -> dict[str, str]:
    """Faults of one action: its event, its tool, and each mapped input."""
    faults = tool_faults(action.tool, f"{prefix}.tool")
    try:
        event = LifecycleEvent(action.event)
    except ValueError:
        names = ", ".join(e.value for e in LifecycleEvent)
        faults[f"{prefix}.event"] = f"unknown event {action.event!r}; one of {names}"
        return faults

    schema = action.tool.input_schema
    props = properties(schema)
    available = EVENT_VARIABLES[event]
    for name, source in action.mapping.items():
        key = f"{prefix}.mapping.{name}"
        if name not in props:
            faults[key] = f"the tool {action.tool.name!r} has no input {name!r}"
            continue
        prop = props[name] if isinstance(props[name], dict) else {}
        if isinstance(source, Constant):
            for path, why in schema_faults(source.const, prop).items():
                faults[key] = f"constant does not fit the input ({path}: {why})"
            continue
        if source not in available:
            faults[key] = (
                f"{event.value} has no variable {source!r}; "
                f"available: {', '.join(available)}"
            )
            continue
        kinds = accepted_types(prop)
        if kinds is not None and not kinds & _fills(source):
            faults[key] = (
                f"{source!r} is a {'/'.join(sorted(_fills(source)))} "
                f"but the input takes {'/'.join(sorted(kinds))}"
            )

    for name in required(schema):
        if name not in action.mapping:
            faults[f"{prefix}.mapping.{name}"] = (
                f"required input of tool {action.tool.name!r} is not mapped"
            )
    return faults


def template_faults(template: PostAnalysisTemplate, prefix: str) -> dict[str, str]:
    faults: dict[str, str] = {}
    if not template.name.strip():
        faults[f"{prefix}.name"] = "a template needs a name"
    if len(set(template.tags)) != len(template.tags):
        faults[f"{prefix}.tags"] = "tags must be unique"
    if template.max_tags < 1:
        faults[f"{prefix}.max_tags"] = "must be at least 1"
    seen: set[str] = set()
    for i, spec in enumerate(template.fields):
        if not spec.name.isidentifier():
            faults[f"{prefix}.fields[{i}].name"] = "must be an identifier"
        elif spec.name in seen or spec.name in ("summary", "tags"):
            faults[f"{prefix}.fields[{i}].name"] = f"{spec.name!r} is taken"
        seen.add(spec.name)
        if spec.enum is not None and spec.type != "string":
            faults[f"{prefix}.fields[{i}].enum"] = "only string fields take an enum"
    return faults


def build_input(action: Action, variables: dict[str, Any]) -> dict[str, Any]:
    """The tool input an event's variables fill, by the action's mapping.

    An optional input whose variable has no value (None) is left out.
    """
    required_names = set(required(action.tool.input_schema))
    payload: dict[str, Any] = {}
    for name, source in action.mapping.items():
        if isinstance(source, Constant):
            payload[name] = source.const
            continue
        value = variables.get(source)
        if value is None and name not in required_names:
            continue
        payload[name] = value
    return payload
