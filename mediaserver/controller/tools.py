"""Custom tools: a user-defined HTTP call with a JSON Schema for its input.

Only the JSON Schema keywords the product needs are understood (`type`,
`properties`, `required`, `enum`, `items`, `format`); an input is checked
with `schema_faults`, which names every fault instead of stopping at the
first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

JSON_TYPES = frozenset(
    {"string", "number", "integer", "boolean", "object", "array", "null"}
)
# Webhook actions carry their input as a JSON body, so GET is not offered.
TOOL_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


class Tool(msgspec.Struct, frozen=True, kw_only=True):
    """A user's HTTP tool; `input_schema` is a JSON Schema object."""

    name: str
    url: str
    method: str = "POST"
    headers: dict[str, str] = {}
    input_schema: dict[str, Any] = msgspec.field(default_factory=_empty_schema)
    timeout_s: float = 10.0
    description: str = ""


def tool_faults(tool: Tool, prefix: str) -> dict[str, str]:
    """Faults in a tool's own definition, keyed under `prefix`."""
    faults: dict[str, str] = {}
    if not tool.name.strip():
        faults[f"{prefix}.name"] = "a tool needs a name"

    parts = urlsplit(tool.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        faults[f"{prefix}.url"] = f"not an http(s) URL: {tool.url!r}"
    if tool.method.upper() not in TOOL_METHODS:
        allowed = ", ".join(sorted(TOOL_METHODS))
        faults[f"{prefix}.method"] = (
            f"{tool.method!r} cannot carry a JSON body; use one of {allowed}"
        )
    if not 0 < tool.timeout_s <= 120:
        faults[f"{prefix}.timeout_s"] = "must be more than 0 and at most 120 seconds"

    schema = tool.input_schema
    if schema.get("type", "object") != "object":
        faults[f"{prefix}.input_schema.type"] = "a tool's input must be an object"
    for name, prop in properties(schema).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        if kind is not None and not set(kinds) <= JSON_TYPES:
            faults[f"{prefix}.input_schema.properties.{name}"] = (
                f"unknown JSON Schema type {kind!r}"
            )
    for name in required(schema):
        if name not in properties(schema):
            faults[f"{prefix}.input_schema.required"] = (
                f"{name!r} is required but has no property"
            )
    return faults


def properties(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties", {})
    return props if isinstance(props, dict) else {}


def required(schema: dict[str, Any]) -> list[str]:
    names = schema.get("required", [])
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def accepted_types(prop: dict[str, Any]) -> set[str] | None:
    """The JSON types a property accepts, or None when it names none."""
    kind = prop.get("type")
    if kind is None:
        return None
    return set(kind) if isinstance(kind, list) else {kind}


def type_of(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def value_matches(value: Any, kinds: set[str]) -> bool:
    actual = type_of(value)
    return actual in kinds or (actual == "integer" and "number" in kinds)


def schema_faults(value: Any, schema: dict[str, Any], path: str = "") -> dict[str, str]:
    """Every way `value` breaks `schema`, keyed by the JSON path of the fault."""
    here = path or "$"
    kinds = accepted_types(schema)
    if kinds is not None and not value_matches(value, kinds):
        return {here: f"expected {'/'.join(sorted(kinds))}, got {type_of(value)}"}
    if "enum" in schema and value not in schema["enum"]:
        return {here: f"{value!r} is not one of {schema['enum']!r}"}

    faults: dict[str, str] = {}
    if isinstance(value, dict):
        for name in required(schema):
            if name not in value:
                faults[f"{path}.{name}" if path else name] = "required"
        for name, prop in properties(schema).items():
            if name in value and isinstance(prop, dict):
                sub = f"{path}.{name}" if path else name
                faults.update(schema_faults(value[name], prop, sub))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            faults.update(schema_faults(item, schema["items"], f"{here}[{i}]"))
    return faults
