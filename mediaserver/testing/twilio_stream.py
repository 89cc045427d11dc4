"""A loopback Twilio Media Stream (carriers.md 1.3, 1.7).

    stream = TwilioStream(server.url("twilio"), token=media_token, speed=10)
    async with stream:
        await stream.play(pcm)          # int16, 8 kHz; sends stop at the end
        await stream.wait_closed()      # or expect the server's hang-up
    stream.outbound, stream.clears, stream.timeline

Messages are exactly Twilio's: `connected`, `start` with the token in
`customParameters`, `media` with string counters (one `sequenceNumber`
over every message, `chunk` from 1, `timestamp` +20 ms), mark echoes,
`dtmf`, `stop`. See `CarrierStream` for playout and the timeline.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from mediaserver.codecs.g711 import pcm_to_ulaw
from mediaserver.testing.carrier_stream import CarrierStream


class TwilioStream(CarrierStream):
    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        speed: float = 1.0,
        custom_parameters: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        drop_chunks: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(url, speed=speed, headers=headers, drop_chunks=drop_chunks)
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.call_sid = "CA" + uuid.uuid4().hex
        self.custom_parameters = dict(custom_parameters or {})
        if token is not None:
            self.custom_parameters["token"] = token

    def encode_audio(self, pcm: NDArray[np.int16]) -> bytes:
        return pcm_to_ulaw(pcm)

    def connected_message(self) -> dict[str, object]:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def start_message(self) -> dict[str, object]:
        return {
            "event": "start",
            "sequenceNumber": self.next_sequence(),
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {
                    "encoding": "audio/x-mulaw",
                    "sampleRate": 8000,
                    "channels": 1,
                },
                "customParameters": self.custom_parameters,
            },
            "streamSid": self.stream_sid,
        }

    def media_message(self, payload: bytes, chunk: int, ts: int) -> dict[str, object]:
        return {
            "event": "media",
            "sequenceNumber": self.next_sequence(),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(ts),
                "payload": base64.b64encode(payload).decode(),
            },
            "streamSid": self.stream_sid,
        }

    def mark_message(self, name: str) -> dict[str, object]:
        return {
            "event": "mark",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        }

    def dtmf_message(self, digit: str) -> dict[str, object]:
        return {
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": self.next_sequence(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }

    def stop_message(self) -> dict[str, object]:
        return {
            "event": "stop",
            "sequenceNumber": self.next_sequence(),
            "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
            "streamSid": self.stream_sid,
        }
