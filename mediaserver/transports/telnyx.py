"""Telnyx media streaming, Sans-I/O (carriers.md section 3.5).

Same shape as Twilio with snake_case fields and a top-level `stream_id`.
The stream's codec is announced in `start.media_format.encoding` (PCMU or
PCMA, 8 kHz). Outbound `media`, `mark` and `clear` carry no `stream_id`,
as pipecat sends them. The per-call token comes from the
`x-telnyx-streaming-auth-token` upgrade header, the `connected` frame or
`start.custom_parameters.token`; the glue picks the first one present.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mediaserver.transports.common import (
    CarrierReportedError,
    Connected,
    Dtmf,
    Encoding,
    Inbound,
    Issue,
    IssueKind,
    MarkEcho,
    MediaBody,
    Name,
    OutPayload,
    Started,
    Stopped,
    decode_text,
    token_parameter,
)

TOKEN_HEADER = "x-telnyx-streaming-auth-token"


class _Event(msgspec.Struct, tag_field="event", kw_only=True):
    sequence_number: str | int | None = None
    stream_id: str | None = None


class _MediaFormat(msgspec.Struct, frozen=True, kw_only=True):
    encoding: str = "PCMU"
    sample_rate: int = 8000
    channels: int = 1


class _StartBody(msgspec.Struct, kw_only=True):
    call_control_id: str = ""
    call_session_id: str = ""
    custom_parameters: dict[str, Any] = {}
    media_format: _MediaFormat = _MediaFormat()


class _Digit(msgspec.Struct, kw_only=True):
    digit: str


class _ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: int | None = None
    title: str = ""
    detail: str = ""


class _Connected(_Event, tag="connected", rename={"token": TOKEN_HEADER}):
    version: str = ""
    token: str | None = None


class _Start(_Event, tag="start"):
    start: _StartBody


class _Media(_Event, tag="media"):
    media: MediaBody


class _Mark(_Event, tag="mark"):
    mark: Name


class _Dtmf(_Event, tag="dtmf"):
    dtmf: _Digit


class _Stop(_Event, tag="stop"):
    stop: dict[str, Any] = {}


class _Error(_Event, tag="error"):
    payload: _ErrorBody = _ErrorBody()


_Message = _Connected | _Start | _Media | _Mark | _Dtmf | _Stop | _Error


class _OutMedia(msgspec.Struct, tag_field="event", tag="media"):
    media: OutPayload


class _OutMark(msgspec.Struct, tag_field="event", tag="mark"):
    mark: Name


class _OutClear(msgspec.Struct, tag_field="event", tag="clear"):
    pass


_decoder = msgspec.json.Decoder(_Message)
_encoder = msgspec.json.Encoder()
_ENCODINGS = {"PCMU": Encoding.PCMU, "PCMA": Encoding.PCMA}
_CLEAR = _encoder.encode(_OutClear())


class TelnyxCodec:
    """Parse and build Telnyx media-streaming messages for one stream."""

    carrier = "telnyx"

    def __init__(self) -> None:
        self.stream_id = ""

    def decode(self, data: str | bytes) -> Inbound | Issue:
        msg = decode_text(_decoder, data)
        if type(msg) is _Media:
            return msg.media
        if type(msg) is Issue:
            return msg
        if type(msg) is _Start:
            return self._started(msg)
        if type(msg) is _Mark:
            return MarkEcho(name=msg.mark.name)
        if type(msg) is _Dtmf:
            return Dtmf(digit=msg.dtmf.digit)
        if type(msg) is _Stop:
            return Stopped()
        if type(msg) is _Error:
            return CarrierReportedError(code=msg.payload.code, title=msg.payload.title)
        assert type(msg) is _Connected
        return Connected(token=msg.token)

    def _started(self, msg: _Start) -> Started | Issue:
        body = msg.start
        encoding = _ENCODINGS.get(body.media_format.encoding.upper())
        if encoding is None or body.media_format.sample_rate != 8000:
            detail = f"{body.media_format.encoding}/{body.media_format.sample_rate}"
            return Issue(kind=IssueKind.UNSUPPORTED_ENCODING, detail=detail[:40])
        self.stream_id = msg.stream_id or ""
        return Started(
            stream_id=self.stream_id,
            provider_call_id=body.call_control_id,
            encoding=encoding,
            token=token_parameter(body.custom_parameters),
            custom_parameters=body.custom_parameters,
        )

    def encode_media(self, payload: bytes) -> bytes:
        """A `media` message in RTP mode: raw codec bytes, no RTP header."""
        return _encoder.encode(_OutMedia(OutPayload(payload)))

    def encode_mark(self, name: str) -> bytes:
        return _encoder.encode(_OutMark(Name(name=name)))

    def encode_clear(self) -> bytes:
        return _CLEAR
