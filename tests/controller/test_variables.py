"""Variables and metadata: coercion from text, defaults, required, undeclared."""

from __future__ import annotations

import pytest

from mediaserver.controller.campaign import VariableSpec, VariableType
from mediaserver.controller.variables import coerce_value, resolve_values

SPECS = [
    VariableSpec(name="customer_name", required=True),
    VariableSpec(name="age", type=VariableType.INTEGER),
    VariableSpec(name="balance", type=VariableType.NUMBER, default=0),
    VariableSpec(name="vip", type=VariableType.BOOLEAN, default="no"),
    VariableSpec(name="due", type=VariableType.DATE),
]


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("integer", "42", 42),
        ("integer", " -7 ", -7),
        ("integer", 42, 42),
        ("integer", 42.0, 42),  # JSON may send 42.0
        ("number", "3.5", 3.5),
        ("number", "12", 12),
        ("number", 2, 2),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", "FALSE", False),
        ("boolean", True, True),
        ("date", "2026-12-24", "2026-12-24"),
        ("string", "Ahmed", "Ahmed"),
        ("string", 7, "7"),
    ],
)
def test_coerces(kind: str, raw: object, expected: object) -> None:
    value = coerce_value(kind, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("integer", "42.5"),
        ("integer", "forty"),
        ("integer", True),
        ("integer", "4.2E+1"),
        ("number", "nan"),
        ("number", "inf"),
        ("number", "1,5"),
        ("boolean", "maybe"),
        ("boolean", 2),
        ("date", "24/12/2026"),
        ("date", "2026-02-30"),
        ("string", ["a"]),
    ],
)
def test_rejects_values_of_the_wrong_type(kind: str, raw: object) -> None:
    with pytest.raises(ValueError, match="expected"):
        coerce_value(kind, raw)


def test_defaults_filled_and_types_coerced() -> None:
    values, errors = resolve_values(
        SPECS, {"customer_name": "Ahmed", "age": "42"}, field="variables"
    )
    assert errors == {}
    assert values == {"customer_name": "Ahmed", "age": 42, "balance": 0, "vip": False}


def test_missing_required_variable_is_named() -> None:
    values, errors = resolve_values(SPECS, {"age": "42"}, field="variables")
    assert "customer_name" not in values
    assert errors == {"variables.customer_name": "required but not given"}


def test_blank_text_counts_as_missing() -> None:
    _, errors = resolve_values(SPECS, {"customer_name": "  "}, field="variables")
    assert "variables.customer_name" in errors


def test_every_bad_value_is_reported_at_once() -> None:
    _, errors = resolve_values(
        SPECS,
        {"customer_name": "A", "age": "x", "vip": "perhaps", "due": "tomorrow"},
        field="variables",
    )
    assert set(errors) == {"variables.age", "variables.vip", "variables.due"}


def test_undeclared_keys_are_rejected_by_name() -> None:
    _, errors = resolve_values(
        SPECS, {"customer_name": "A", "customer_nmae": "B"}, field="metadata"
    )
    assert errors == {"metadata.customer_nmae": "not declared by the campaign"}
