"""A loopback Telnyx media stream (carriers.md 3.5).

    stream = TelnyxStream(server.url("telnyx"), token=media_token, encoding="PCMA")
    async with stream:
        await stream.play(pcm)

snake_case messages with a top-level `stream_id`; the codec (PCMU or
PCMA) is announced in `start.media_format.encoding`. The token travels as
the `x-telnyx-streaming-auth-token` header and in the `connected` frame
(`token_in="header"`, Telnyx's own way) or in `start.custom_parameters`
(`token_in="parameters"`). `swap_pairs=True` sends frames 2,1,4,3,...
to exercise the server's reordering. Playout is `CarrierStream`'s.
"""

from __future__ import annotations

import base64
import uuid
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from mediaserver.codecs.g711 import pcm_to_alaw, pcm_to_ulaw
from mediaserver.testing.carrier_stream import FRAME, CarrierStream
from mediaserver.transports.telnyx import TOKEN_HEADER


class TelnyxStream(CarrierStream):
    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        encoding: Literal["PCMU", "PCMA"] = "PCMU",
        token_in: Literal["header", "parameters"] = "header",
        speed: float = 1.0,
        swap_pairs: bool = False,
        drop_chunks: frozenset[int] = frozenset(),
    ) -> None:
        headers = {TOKEN_HEADER: token} if token and token_in == "header" else {}
        super().__init__(url, speed=speed, headers=headers, drop_chunks=drop_chunks)
        self.encoding = encoding
        self.token = token
        self.token_in = token_in
        self.swap_pairs = swap_pairs
        self.stream_id = str(uuid.uuid4()).upper()
        self.call_control_id = "v2:" + uuid.uuid4().hex
        self._held: tuple[bytes, int, int] | None = None

    def encode_audio(self, pcm: NDArray[np.int16]) -> bytes:
        return pcm_to_alaw(pcm) if self.encoding == "PCMA" else pcm_to_ulaw(pcm)

    def connected_message(self) -> dict[str, object]:
        message: dict[str, object] = {"event": "connected", "version": "1.0.0"}
        if self.token and self.token_in == "header":
            message[TOKEN_HEADER] = self.token
        return message

    def start_message(self) -> dict[str, object]:
        params = (
            {"token": self.token} if self.token and self.token_in != "header" else {}
        )
        return {
            "event": "start",
            "sequence_number": self.next_sequence(),
            "stream_id": self.stream_id,
            "start": {
                "user_id": str(uuid.uuid4()),
                "call_control_id": self.call_control_id,
                "call_session_id": str(uuid.uuid4()),
                "from": "+13125550100",
                "to": "+13125550199",
                "custom_parameters": params,
                "media_format": {
                    "encoding": self.encoding,
                    "sample_rate": 8000,
                    "channels": 1,
                },
            },
        }

    async def send_frame(self, payload: bytes) -> None:
        if not self.swap_pairs or len(payload) != FRAME:
            await super().send_frame(payload)
            return
        # Hold every odd frame and send it after the next one.
        self._chunk += 1
        self.frames_sent += 1
        entry = (payload, self._chunk, (self._chunk - 1) * 20)
        if self._held is None:
            self._held = entry
            return
        held, self._held = self._held, None
        await self.send_json(self.media_message(*entry))
        await self.send_json(self.media_message(*held))

    def media_message(self, payload: bytes, chunk: int, ts: int) -> dict[str, object]:
        return {
            "event": "media",
            "sequence_number": self.next_sequence(),
            "stream_id": self.stream_id,
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(ts),
                "payload": base64.b64encode(payload).decode(),
            },
        }

    def mark_message(self, name: str) -> dict[str, object]:
        return {
            "event": "mark",
            "sequence_number": self.next_sequence(),
            "stream_id": self.stream_id,
            "mark": {"name": name},
        }

    def dtmf_message(self, digit: str) -> dict[str, object]:
        return {
            "event": "dtmf",
            "sequence_number": self.next_sequence(),
            "stream_id": self.stream_id,
            "dtmf": {"digit": digit},
        }

    def stop_message(self) -> dict[str, object]:
        return {
            "event": "stop",
            "sequence_number": self.next_sequence(),
            "stream_id": self.stream_id,
            "stop": {"call_control_id": self.call_control_id},
        }
