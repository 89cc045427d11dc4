"""The simulated callee's media: a recording played as a Twilio Media Stream.

The stream is the media helper's loopback Twilio client
(`mediaserver.testing.twilio_stream`), which speaks exactly what Twilio
sends (reference/carriers.md §1.3) with the per-call token in
`customParameters`. Our server closing the socket ends the call early, as
it would on a real `<Connect><Stream>`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from mediaserver.controller.dialer import DialRequest
from mediaserver.corpus import read_wav
from mediaserver.errors import CarrierError
from mediaserver.testing.twilio_stream import TwilioStream

log = logging.getLogger(__name__)


def load_recording(recording: Path) -> NDArray[np.int16]:
    """The recording's samples; `CarrierError` naming why it cannot play.

    Any failure counts (a missing file, a non-WAV file, a torn header, the
    wrong rate): the caller ends the call on it rather than leave it open.
    """
    try:
        return read_wav(recording)
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise CarrierError(
            f"cannot play recording {recording.name}: {reason}", retryable=False
        ) from exc


async def stream_recording(
    request: DialRequest,
    pcm: NDArray[np.int16],
    *,
    speed: float = 1.0,
    hold_s: float = 0.0,
) -> None:
    """Play `pcm` (then `hold_s` of silence) into `request.media_url`.

    Returns when the callee's audio is over or our server hung up. A stream
    that cannot open is logged and ends the call like a dropped line; any
    other failure is raised for the carrier to fail the call with.
    """
    stream = TwilioStream(request.media_url, token=request.media_token, speed=speed)
    try:
        async with stream:
            await stream.play(pcm, hold_s=hold_s)
    except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
        log.info(
            "simulated media stream ended: %s", exc, extra={"call_id": request.call_id}
        )
