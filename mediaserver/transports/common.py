"""What every carrier transport hands the call session, whatever the wire.

Both Twilio and Telnyx carry media as `{track, chunk, timestamp, payload}`,
so one `MediaBody` Struct serves both and the per-frame path never copies
into a second object. The other inbound messages are rare and get small
carrier-neutral Structs. `Issue` reports input we refused, with a stable
`kind` that is counted per call and process-wide.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

import msgspec


class Encoding(StrEnum):
    """G.711 law of a stream's audio (8 kHz mono, 160 bytes per 20 ms)."""

    PCMU = "pcmu"
    PCMA = "pcma"


T = TypeVar("T")

FRAME_BYTES = 160  # 20 ms of 8 kHz G.711
FRAME_MS = 20
SILENCE_BYTE = {Encoding.PCMU: 0xFF, Encoding.PCMA: 0xD5}


class MediaBody(msgspec.Struct, kw_only=True):
    """One inbound media frame; `payload` arrives base64 and is decoded by msgspec."""

    payload: bytes
    track: str = "inbound"
    chunk: str | int | None = None
    timestamp: str | int | None = None


class Connected(msgspec.Struct, frozen=True, kw_only=True):
    token: str | None = None  # Telnyx repeats its stream auth token here


class Started(msgspec.Struct, frozen=True, kw_only=True):
    stream_id: str
    provider_call_id: str
    encoding: Encoding
    token: str | None
    custom_parameters: dict[str, Any]
    tracks: list[str] = []


class Name(msgspec.Struct, kw_only=True):
    """A mark's `{name}` on the wire, both ways."""

    name: str


class OutPayload(msgspec.Struct):
    """An outbound media message's `{payload}`; msgspec encodes it as base64."""

    payload: bytes


class MarkEcho(msgspec.Struct, frozen=True, kw_only=True):
    name: str


class Dtmf(msgspec.Struct, frozen=True, kw_only=True):
    digit: str


class Stopped(msgspec.Struct, frozen=True, kw_only=True):
    pass


class CarrierReportedError(msgspec.Struct, frozen=True, kw_only=True):
    code: int | None
    title: str


class IssueKind(StrEnum):
    """Why an inbound message was refused; also the counter names."""

    BINARY_FRAME = "binary_frame"
    MALFORMED_JSON = "malformed_json"
    BAD_BASE64 = "bad_base64"
    INVALID_MESSAGE = "invalid_message"  # JSON, but not the documented shape
    UNKNOWN_EVENT = "unknown_event"
    EMPTY_PAYLOAD = "empty_payload"
    UNSUPPORTED_ENCODING = "unsupported_encoding"


class Issue(msgspec.Struct, frozen=True, kw_only=True):
    kind: IssueKind
    detail: str


Inbound = (
    MediaBody | Connected | Started | MarkEcho | Dtmf | Stopped | CarrierReportedError
)


def decode_text(decoder: msgspec.json.Decoder[T], data: str | bytes) -> T | Issue:
    """One WebSocket message as the carrier's typed message, or why not."""
    if isinstance(data, bytes):
        return Issue(kind=IssueKind.BINARY_FRAME, detail=f"{len(data)} bytes")
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        return classify_failure(data, exc)


def token_parameter(custom_parameters: dict[str, Any]) -> str | None:
    """The per-call token a stream's custom parameters carry, if a string."""
    token = custom_parameters.get("token")
    return token if isinstance(token, str) else None


def classify_failure(data: str | bytes, exc: msgspec.DecodeError) -> Issue:
    """Name the fault of a message the typed decoder refused (the rare path)."""
    text = str(exc)
    if "base64" in text:
        return Issue(kind=IssueKind.BAD_BASE64, detail=text)
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return Issue(kind=IssueKind.MALFORMED_JSON, detail=text)
    except RecursionError:  # e.g. "[[[[..." a thousand deep: still a bad message
        return Issue(kind=IssueKind.MALFORMED_JSON, detail="nested too deeply")
    if not isinstance(raw, dict):
        return Issue(kind=IssueKind.INVALID_MESSAGE, detail="not a JSON object")
    if "Invalid value" in text and "$.event" in text:
        return Issue(kind=IssueKind.UNKNOWN_EVENT, detail=str(raw.get("event"))[:40])
    if "event" not in raw:
        return Issue(kind=IssueKind.INVALID_MESSAGE, detail="no event field")
    return Issue(kind=IssueKind.INVALID_MESSAGE, detail=text)


def chunk_number(value: str | int | None) -> int | None:
    """A chunk counter as an int, or None when absent or not a number."""
    if value is None or type(value) is int:
        return value
    try:
        return int(value)
    except ValueError:
        return None
