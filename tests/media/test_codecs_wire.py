"""Twilio and Telnyx messages parsed and built without any socket."""

from __future__ import annotations

import base64
import json

import pytest

from mediaserver.transports.common import (
    CarrierReportedError,
    Connected,
    Dtmf,
    Encoding,
    Issue,
    IssueKind,
    MarkEcho,
    MediaBody,
    Started,
    Stopped,
)
from mediaserver.transports.telnyx import TelnyxCodec
from mediaserver.transports.twilio import TwilioCodec

SID = "MZ" + "1" * 32
FRAME = bytes(range(160))


def twilio_start(**params: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": SID,
                "callSid": "CA" + "2" * 32,
                "tracks": ["inbound"],
                "mediaFormat": {
                    "encoding": "audio/x-mulaw",
                    "sampleRate": 8000,
                    "channels": 1,
                },
                "customParameters": params,
            },
            "streamSid": SID,
        }
    )


def twilio_media(payload: str, chunk: str = "1") -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "2",
            "media": {
                "track": "inbound",
                "chunk": chunk,
                "timestamp": "52",
                "payload": payload,
            },
            "streamSid": SID,
        }
    )


def test_twilio_start_carries_token_and_ids() -> None:
    codec = TwilioCodec()
    event = codec.decode(twilio_start(token="abc", lead_id="42"))
    assert isinstance(event, Started)
    assert event.token == "abc"
    assert event.stream_id == SID
    assert event.provider_call_id == "CA" + "2" * 32
    assert event.encoding is Encoding.PCMU
    assert event.custom_parameters["lead_id"] == "42"


def test_twilio_media_payload_is_decoded_bytes() -> None:
    codec = TwilioCodec()
    event = codec.decode(twilio_media(base64.b64encode(FRAME).decode(), "7"))
    assert isinstance(event, MediaBody)
    assert event.payload == FRAME
    assert event.chunk == "7"
    assert event.track == "inbound"


def test_twilio_rare_messages() -> None:
    codec = TwilioCodec()
    connected = '{"event": "connected", "protocol": "Call", "version": "1.0.0"}'
    assert isinstance(codec.decode(connected), Connected)
    mark = codec.decode(
        json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": "utt-7"}})
    )
    assert mark == MarkEcho(name="utt-7")
    dtmf = codec.decode(
        json.dumps(
            {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "x", "digit": "5"}}
        )
    )
    assert dtmf == Dtmf(digit="5")
    stop = codec.decode(json.dumps({"event": "stop", "stop": {}, "streamSid": SID}))
    assert isinstance(stop, Stopped)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x00\x01binary", IssueKind.BINARY_FRAME),
        ("{not json", IssueKind.MALFORMED_JSON),
        ("[1, 2]", IssueKind.INVALID_MESSAGE),
        ('{"no_event": 1}', IssueKind.INVALID_MESSAGE),
        ('{"event": "telemetry"}', IssueKind.UNKNOWN_EVENT),
        (twilio_media("@@not base64@@"), IssueKind.BAD_BASE64),
        (
            '{"event": "media", "media": {"track": "inbound"}}',
            IssueKind.INVALID_MESSAGE,
        ),
    ],
)
def test_twilio_bad_input_is_named(data: str | bytes, kind: IssueKind) -> None:
    event = TwilioCodec().decode(data)
    assert isinstance(event, Issue)
    assert event.kind is kind


def test_twilio_outbound_messages_carry_stream_sid() -> None:
    codec = TwilioCodec()
    codec.decode(twilio_start())
    media = json.loads(codec.encode_media(FRAME))
    assert media == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(FRAME).decode()},
    }
    assert json.loads(codec.encode_mark("m1")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "m1"},
    }
    assert json.loads(codec.encode_clear()) == {"event": "clear", "streamSid": SID}


def telnyx_start(encoding: str, **params: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequence_number": "1",
            "stream_id": "32DE0DEA",
            "start": {
                "call_control_id": "v2:abc",
                "custom_parameters": params,
                "media_format": {
                    "encoding": encoding,
                    "sample_rate": 8000,
                    "channels": 1,
                },
            },
        }
    )


@pytest.mark.parametrize(
    ("name", "law"), [("PCMU", Encoding.PCMU), ("PCMA", Encoding.PCMA)]
)
def test_telnyx_start_announces_the_law(name: str, law: Encoding) -> None:
    event = TelnyxCodec().decode(telnyx_start(name, token="t"))
    assert isinstance(event, Started)
    assert event.encoding is law
    assert event.token == "t"
    assert event.provider_call_id == "v2:abc"


def test_telnyx_refuses_other_codecs() -> None:
    event = TelnyxCodec().decode(telnyx_start("L16"))
    assert isinstance(event, Issue)
    assert event.kind is IssueKind.UNSUPPORTED_ENCODING


def test_telnyx_connected_token_error_and_numeric_counters() -> None:
    codec = TelnyxCodec()
    connected = codec.decode(
        '{"event": "connected", "version": "1.0.0", '
        '"x-telnyx-streaming-auth-token": "tok"}'
    )
    assert connected == Connected(token="tok")
    media = codec.decode(
        json.dumps(
            {
                "event": "media",
                "sequence_number": 4,
                "stream_id": "S",
                "media": {"chunk": 2, "timestamp": 5, "payload": "AAE="},
            }
        )
    )
    assert isinstance(media, MediaBody)
    assert media.chunk == 2
    assert media.payload == b"\x00\x01"
    error = codec.decode(
        '{"event": "error", "payload": {"code": 100003, "title": "malformed_frame"}}'
    )
    assert error == CarrierReportedError(code=100003, title="malformed_frame")


def test_telnyx_outbound_messages_have_no_stream_id() -> None:
    codec = TelnyxCodec()
    codec.decode(telnyx_start("PCMA"))
    assert json.loads(codec.encode_media(b"ab")) == {
        "event": "media",
        "media": {"payload": "YWI="},
    }
    assert json.loads(codec.encode_mark("m")) == {
        "event": "mark",
        "mark": {"name": "m"},
    }
    assert json.loads(codec.encode_clear()) == {"event": "clear"}
