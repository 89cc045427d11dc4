"""Variables and metadata of a launch: typed, coerced, defaulted, required.

A campaign declares each variable (used by the script) and metadata key
(attached to the call only) with a type. Values arrive as JSON values from
the API or as text from a CSV; both go through `coerce_value`, so "42" is
an integer 42 whichever way it came.

Undeclared keys are rejected, naming the key: a typo such as
`customer_nmae` would otherwise reach no script and fail silently. (The CSV
import treats unknown unprefixed columns differently: spreadsheets carry
extra columns, so those are ignored and listed in its report.)
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediaserver.controller.campaign import VariableSpec

JsonValue = str | int | float | bool

_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def coerce_value(kind: str, value: object) -> JsonValue:
    """Return `value` as the declared type, or raise `ValueError` saying why."""
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value)
        raise ValueError("expected text")
    if kind == "integer":
        return _integer(value)
    if kind == "number":
        return _number(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "date":
        return _date(value)
    raise ValueError(f"unknown type {kind!r}")


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    raise ValueError(f"expected an integer, got {_show(value)}")


def _number(value: object) -> float | int:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        number: float | int = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if _INTEGER.match(text) else float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {_show(value)}") from None
    else:
        raise ValueError(f"expected a number, got {_show(value)}")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected true/false (or yes/no, 1/0), got {_show(value)}")


def _date(value: object) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"expected a date as YYYY-MM-DD, got {_show(value)}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_blank(value: object) -> bool:
    """Missing, null, or text with nothing but spaces: the variable is absent."""
    return value is None or (isinstance(value, str) and not value.strip())


def resolve_values(
    specs: Sequence[VariableSpec],
    given: Mapping[str, object] | None,
    *,
    field: str,
) -> tuple[dict[str, JsonValue], dict[str, str]]:
    """Coerce the given values, fill defaults and check required ones.

    Returns the values and the errors, keyed `<field>.<name>` (e.g.
    `variables.customer_name`), so a caller can gather every problem.
    """
    values: dict[str, JsonValue] = {}
    errors: dict[str, str] = {}
    given = given or {}
    declared = {spec.name for spec in specs}

    for spec in specs:
        raw = given.get(spec.name)
        if is_blank(raw):
            if spec.default is not None:
                values[spec.name] = coerce_value(spec.type, spec.default)
            elif spec.required:
                errors[f"{field}.{spec.name}"] = "required but not given"
            continue
        try:
            values[spec.name] = coerce_value(spec.type, raw)
        except ValueError as exc:
            errors[f"{field}.{spec.name}"] = str(exc)

    for name in given:
        if name not in declared:
            errors[f"{field}.{name}"] = "not declared by the campaign"
    return values, errors
