"""Twilio Media Streams, Sans-I/O (carriers.md section 1).

`TwilioCodec.decode` turns one WebSocket message into a carrier-neutral
inbound event (or an `Issue`); the `encode_*` methods build the three
messages a bidirectional `<Connect><Stream>` accepts: `media`, `mark` and
`clear`, each carrying the stream's `streamSid`. Counters on the wire are
strings; msgspec decodes the base64 payload straight into bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mediaserver.transports.common import (
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


class _Event(msgspec.Struct, tag_field="event", rename="camel", kw_only=True):
    sequence_number: str | None = None
    stream_sid: str | None = None


class _MediaFormat(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


class _StartBody(msgspec.Struct, rename="camel", kw_only=True):
    stream_sid: str = ""
    account_sid: str = ""
    call_sid: str = ""
    tracks: list[str] = []
    custom_parameters: dict[str, Any] = {}
    media_format: _MediaFormat = _MediaFormat()


class _Digit(msgspec.Struct, kw_only=True):
    digit: str
    track: str = ""


class _Connected(_Event, tag="connected"):
    protocol: str = ""
    version: str = ""


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


_Message = _Connected | _Start | _Media | _Mark | _Dtmf | _Stop


class _OutMedia(msgspec.Struct, tag_field="event", tag="media", rename="camel"):
    stream_sid: str
    media: OutPayload


class _OutMark(msgspec.Struct, tag_field="event", tag="mark", rename="camel"):
    stream_sid: str
    mark: Name


class _OutClear(msgspec.Struct, tag_field="event", tag="clear", rename="camel"):
    stream_sid: str


_decoder = msgspec.json.Decoder(_Message)
_encoder = msgspec.json.Encoder()


class TwilioCodec:
    """Parse and build Twilio Media Streams messages for one stream."""

    carrier = "twilio"

    def __init__(self) -> None:
        self.stream_sid = ""

    def decode(self, data: str | bytes) -> Inbound | Issue:
        msg = decode_text(_decoder, data)
        # Media first: it is 50 messages a second, everything else is rare.
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
        return Connected()

    def _started(self, msg: _Start) -> Started | Issue:
        body = msg.start
        encoding = body.media_format.encoding.lower()
        if encoding not in ("audio/x-mulaw", "pcmu"):
            return Issue(kind=IssueKind.UNSUPPORTED_ENCODING, detail=encoding[:40])
        self.stream_sid = msg.stream_sid or body.stream_sid
        return Started(
            stream_id=self.stream_sid,
            provider_call_id=body.call_sid,
            encoding=Encoding.PCMU,
            token=token_parameter(body.custom_parameters),
            custom_parameters=body.custom_parameters,
            tracks=body.tracks,
        )

    def encode_media(self, payload: bytes) -> bytes:
        """A `media` message; the payload is raw mu-law, whole 20 ms frames."""
        return _encoder.encode(_OutMedia(self.stream_sid, OutPayload(payload)))

    def encode_mark(self, name: str) -> bytes:
        return _encoder.encode(_OutMark(self.stream_sid, Name(name=name)))

    def encode_clear(self) -> bytes:
        return _encoder.encode(_OutClear(self.stream_sid))
