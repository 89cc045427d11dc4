"""Request bodies read by hand: content types checked, JSON or TOML campaigns.

A campaign may be posted as JSON or as the TOML of config/example-campaign.toml
(`Content-Type: application/toml`); both reach the same validation. Routes
with a typed JSON body check the content type and emptiness first
(`json_body_guard`), so a form post answers 415 and an empty body says so,
instead of Litestar's generic messages. Malformed text is a 400 naming where.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException
from litestar.openapi.spec import (
    OpenAPIMediaType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from mediaserver.errors import ValidationError

JSON = "application/json"
TOML_TYPES = ("application/toml", "text/toml", "text/x-toml")
CSV_TYPES = ("text/csv", "text/plain", "application/octet-stream")


def content_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported(kind: str, accepted: str) -> ClientException:
    return ClientException(
        f"send {accepted}, not {kind or 'a body without a content type'}",
        status_code=415,
    )


def _is_json(kind: str) -> bool:
    return kind == JSON or (kind.startswith("application/") and kind.endswith("+json"))


async def json_body_guard(request: Request[Any, Any, Any]) -> None:
    """`before_request` of typed JSON routes: a JSON content type, a body."""
    kind = content_type(request)
    if kind and not _is_json(kind):
        raise _unsupported(kind, JSON)
    if not (await request.body()).strip():
        raise ClientException("request body is empty: send a JSON object")


async def campaign_from_request(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The posted campaign as builtins, from JSON or TOML; raises 400/415/422."""
    kind = content_type(request)
    if kind in TOML_TYPES:
        decoded = _toml(await request.body())
    elif not kind or _is_json(kind):
        decoded = _json(await request.body())
    else:
        raise _unsupported(kind, f"{JSON} or application/toml")
    if not isinstance(decoded, dict):
        got = _JSON_NAMES.get(type(decoded), type(decoded).__name__)
        raise ValidationError({"body": f"JSON object expected, got {got}"})
    return decoded


_JSON_NAMES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _json(body: bytes) -> Any:
    if not body.strip():
        raise ClientException("request body is empty: send a campaign object")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ClientException(str(exc)) from None  # "JSON is malformed: ..."


def _toml(body: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ClientException(f"TOML must be UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:  # the message ends (at line L, column C)
        raise ClientException(f"TOML is malformed: {exc}") from None


_OBJECT, _STRING, _BINARY = OpenAPIType.OBJECT, OpenAPIType.STRING, OpenAPIFormat.BINARY
# The campaign's own JSON Schema, served next to this document.
_CAMPAIGN_REF = Reference(ref="/schema/campaign.json")


@dataclass
class CampaignBodyOperation(Operation):
    """OpenAPI for routes that read the campaign themselves: JSON or TOML."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                "A campaign as JSON, or as TOML (the format of "
                "config/example-campaign.toml); its JSON Schema is at "
                "/schema/campaign.json"
            ),
            content={
                JSON: OpenAPIMediaType(schema=_CAMPAIGN_REF),
                TOML_TYPES[0]: OpenAPIMediaType(schema=Schema(type=_STRING)),
            },
        )


@dataclass
class CsvBodyOperation(Operation):
    """OpenAPI for the CSV upload: a text/csv body or a multipart `file`."""

    def __post_init__(self) -> None:
        upload = Schema(
            type=_OBJECT,
            properties={"file": Schema(type=_STRING, format=_BINARY)},
            required=["file"],
        )
        self.request_body = RequestBody(
            required=True,
            description="Contacts, one per row, with a header row",
            content={
                "text/csv": OpenAPIMediaType(schema=Schema(type=_STRING)),
                "multipart/form-data": OpenAPIMediaType(schema=upload),
            },
        )
