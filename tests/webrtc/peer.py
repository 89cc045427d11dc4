"""A WebRTC test peer built on aiortc: plays a recording, records what it hears.

It offers over real HTTP to our signaling endpoint on 127.0.0.1, exactly
as a softphone would; ICE stays on loopback because the transport under
test pins aioice's host addresses for the whole process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from fractions import Fraction
from typing import Any

import av
import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from numpy.typing import NDArray

RATE = 8000
FRAME = 160


class RecordingTrack(MediaStreamTrack):
    """A recording at real time, then silence until the peer hangs up.

    With `drop_every` N, every Nth frame is never sent (its time passes,
    its pts is skipped), as a lost packet looks to the receiver.
    """

    kind = "audio"

    def __init__(self, pcm: NDArray[np.int16], *, drop_every: int = 0) -> None:
        super().__init__()
        self._drop_every = drop_every
        self.dropped = 0
        padded = -len(pcm) % FRAME
        self._pcm = np.concatenate((pcm, np.zeros(padded, np.int16)))
        self._pts = 0
        self._start: float | None = None
        self.finished = asyncio.Event()  # the whole recording went out

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        if self._drop_every and self._pts // FRAME % self._drop_every == 1:
            self._pts += FRAME  # this frame is lost
            self.dropped += 1
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pcm[self._pts : self._pts + FRAME]
        if len(chunk) < FRAME:
            self.finished.set()
            chunk = np.zeros(FRAME, np.int16)
        frame = av.AudioFrame.from_ndarray(
            chunk.reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.time_base = Fraction(1, RATE)
        frame.pts = self._pts
        self._pts += FRAME
        return frame


class TestPeer:
    """One client peer connection; `heard` is the audio it received (8 kHz)."""

    __test__ = False  # not a test class

    def __init__(self, pcm: NDArray[np.int16], *, drop_every: int = 0) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = RecordingTrack(pcm, drop_every=drop_every)
        self.pc.addTrack(self.track)
        self.heard: list[NDArray[np.int16]] = []
        self.remote_codec = ""
        self.connected = asyncio.Event()  # ICE and DTLS are up
        self.closed_by_server = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.get_running_loop().create_task(
            self._read(track), name="test-peer-reader"
        )

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()
        if self.pc.connectionState == "closed":
            self.closed_by_server.set()

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                for out in self._resampler.resample(frame):
                    self.heard.append(out.to_ndarray().reshape(-1).copy())

    async def offer(self, http: httpx.AsyncClient, url: str, token: str | None) -> Any:
        """Offer to `url`; returns the HTTP response (answer applied when 200)."""
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        body: dict[str, Any] = {
            "sdp": self.pc.localDescription.sdp,
            "type": self.pc.localDescription.type,
        }
        if token is not None:
            body["token"] = token
        response = await http.post(f"{url}/offer", json=body)
        if response.status_code == 200:
            answer = response.json()
            await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        return response

    def audio(self) -> NDArray[np.int16]:
        if not self.heard:
            return np.zeros(0, np.int16)
        return np.concatenate(self.heard)

    async def hang_up(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
