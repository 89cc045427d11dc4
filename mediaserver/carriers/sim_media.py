"""The simulated callee's media: a recording played as a Twilio Media Stream.

Speaks the stream as Twilio does (reference/carriers.md §1.3): `connected`,
`start` with the per-call token in `customParameters`, 20 ms `media`
messages of μ-law, then `stop`. Our server closing the socket ends the call
early, as it would on a real `<Connect><Stream>`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from pathlib import Path

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mediaserver.codecs.g711 import pcm_to_ulaw
from mediaserver.controller.dialer import DialRequest
from mediaserver.corpus import read_wav

log = logging.getLogger(__name__)

_FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
_FRAME_S = 0.02


async def stream_recording(
    request: DialRequest, recording: Path, call_sid: str, speed: float = 1.0
) -> None:
    """Play `recording` into `request.media_url`; returns when the call ends."""
    audio = pcm_to_ulaw(read_wav(recording))
    stream_sid = "MZ" + uuid.uuid4().hex
    try:
        async with connect(request.media_url, open_timeout=5) as ws:
            drain = asyncio.create_task(_drain(ws), name=f"sim-media-rx-{call_sid}")
            try:
                await _send_stream(ws, request, audio, stream_sid, call_sid, speed)
            finally:
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)
    except (OSError, ConnectionClosed, TimeoutError) as exc:
        log.info(
            "simulated media stream ended: %s", exc, extra={"call_id": request.call_id}
        )


async def _send_stream(
    ws: ClientConnection,
    request: DialRequest,
    audio: bytes,
    stream_sid: str,
    call_sid: str,
    speed: float,
) -> None:
    encode = msgspec.json.encode
    await ws.send(
        encode({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode()
    )
    start = {
        "accountSid": "AC" + "0" * 32,
        "streamSid": stream_sid,
        "callSid": call_sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": request.media_token},
    }
    await ws.send(
        encode(
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": start,
                "streamSid": stream_sid,
            }
        ).decode()
    )

    sequence = 1
    for chunk, offset in enumerate(range(0, len(audio), _FRAME_BYTES), start=1):
        frame = audio[offset : offset + _FRAME_BYTES].ljust(_FRAME_BYTES, b"\xff")
        sequence += 1
        media = {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str((chunk - 1) * 20),
            "payload": base64.b64encode(frame).decode(),
        }
        await ws.send(
            encode(
                {
                    "event": "media",
                    "sequenceNumber": str(sequence),
                    "media": media,
                    "streamSid": stream_sid,
                }
            ).decode()
        )
        await asyncio.sleep(_FRAME_S / speed)

    stop = {"accountSid": "AC" + "0" * 32, "callSid": call_sid}
    with contextlib.suppress(ConnectionClosed):
        await ws.send(
            encode(
                {
                    "event": "stop",
                    "sequenceNumber": str(sequence + 1),
                    "stop": stop,
                    "streamSid": stream_sid,
                }
            ).decode()
        )


async def _drain(ws: ClientConnection) -> None:
    """Read what our server sends (agent audio, marks) until it closes."""
    with contextlib.suppress(ConnectionClosed):
        async for _message in ws:
            pass
