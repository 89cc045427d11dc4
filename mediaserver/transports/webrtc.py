"""WebRTC calls through aiortc, bound to the same `CallSession` as carrier streams.

A peer (browser softphone, SIP-to-WebRTC gateway, test peer) sends an SDP
offer with its per-call media token; `WebRtcTransport.answer` verifies the
token before any peer connection exists, answers (aiortc gathers every
candidate first, so the answer is complete: no trickle from our side) and
runs the call in a task it owns:

- inbound: the peer's audio track is read continuously, resampled to s16
  mono 8 kHz, cut into 20 ms frames, mu-law encoded and fed to the session
  exactly as the carrier glue feeds it; a pts gap (lost packets) becomes
  silence so that stream time stays true;
- outbound: the session's paced mu-law frames go into `AgentAudioTrack`,
  which the peer pulls at real time; a clear drops queued audio and marks
  are echoed once their audio has been played or cleared;
- the peer hanging up (DTLS close, ICE failure, track end) ends the call
  with `user_hangup`; the session ending closes the peer connection.

ICE stays on the addresses the operator names: see `use_host_addresses`.
The media halves (framing, the outbound track) are in `webrtc_media`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import aioice.ice
import av
import msgspec
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from mediaserver import tokens
from mediaserver.errors import ProtocolError, TokenError
from mediaserver.ids import new_id
from mediaserver.logs import RateLimitedLog
from mediaserver.plan import CallPlan
from mediaserver.session import CallSession
from mediaserver.transports.common import Encoding, Started
from mediaserver.transports.counters import PROCESS
from mediaserver.transports.webrtc_media import (
    FRAME_SAMPLES,
    AgentAudioTrack,
    InboundFramer,
)
from mediaserver.transports.ws import StreamGate

log = logging.getLogger(__name__)
_warn = RateLimitedLog(log)


class WebRtcSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the WebRTC transport answers and runs calls."""

    # Host candidates are gathered only on these addresses (empty: every
    # interface aioice finds, which never includes loopback).
    ice_host_addresses: list[str] = []
    # Audio codecs to accept, best first, e.g. ["audio/PCMU"]; empty keeps
    # the offer's order.
    codecs: list[str] = []
    media_timeout_s: float = 10.0  # answer to first audio frame
    max_gap_s: float = 5.0  # silence inserted for one pts gap, at most
    max_outbound_s: float = 10.0  # agent audio queued for the peer, at most


def use_host_addresses(addresses: list[str]) -> None:
    """Make aioice gather host candidates on `addresses` only (process-wide).

    aioice skips loopback when it lists interfaces, so two peers on one
    machine would talk over the LAN address; a deployment may also want
    media on one interface only. aioice looks `get_host_addresses` up as a
    module global at gathering time, so replacing it is enough. An empty
    list leaves aioice's own discovery in place.
    """
    if not addresses:
        return
    wanted = list(addresses)

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in wanted if (use_ipv6 if ":" in a else use_ipv4)]

    aioice.ice.get_host_addresses = configured


class OfferError(ProtocolError):
    """An offer or candidate we cannot take; `kind` names why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # bad_offer, unknown_call, busy


# The session's side: `CarrierSender` over the peer connection.

_MEDIA, _MARK, _CLEAR = b"m", b"k", b"c"


class WebRtcCarrier:
    """The peer as the session sees it (`CarrierSender`).

    There is no wire format to encode into: each "message" is a one-byte
    tag and its body, taken apart again by `send` and applied to the track.
    """

    carrier = "webrtc"

    def __init__(
        self, track: AgentAudioTrack, close: Callable[[], Awaitable[None]]
    ) -> None:
        self._track = track
        self._close = close

    def encode_media(self, payload: bytes) -> bytes:
        return _MEDIA + payload

    def encode_mark(self, name: str) -> bytes:
        return _MARK + name.encode()

    def encode_clear(self) -> bytes:
        return _CLEAR

    async def send(self, message: bytes) -> None:
        tag, body = message[:1], message[1:]
        if tag == _MEDIA:
            self._track.add_audio(body)
        elif tag == _MARK:
            self._track.add_mark(body.decode())
        elif tag == _CLEAR:
            self._track.clear()

    async def close(self, code: int, reason: str) -> None:
        await self._close()


class WebRtcCall:
    """One peer connection and, once audio flows, its session."""

    def __init__(
        self,
        plan: CallPlan,
        token: str,
        pc: RTCPeerConnection,
        gate: StreamGate,
        settings: WebRtcSettings,
    ) -> None:
        self.plan = plan
        self.call_id = plan.call_id
        self.pc = pc
        self.session: CallSession | None = None
        self.outbound = AgentAudioTrack(max_queued_s=settings.max_outbound_s)
        self.framer = InboundFramer(max_gap_s=settings.max_gap_s)
        self.bad_frames = 0
        self._chunk = 0  # our own frame counter: the session orders by it
        self._token = token
        self._gate = gate
        self._settings = settings
        self._inbound: MediaStreamTrack | None = None
        self._track_seen = asyncio.Event()
        self._gone = asyncio.Event()
        self._closer: asyncio.Task[None] | None = None
        self._extra = {"call_id": plan.call_id, "campaign_id": plan.campaign_id}
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._inbound is None:
            self._inbound = track
            self._track_seen.set()

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._gone.set()

    async def hang_up(self) -> None:
        """The peer said bye over signaling: same as closing its connection."""
        self._gone.set()
        await self.close_pc()

    async def close_pc(self) -> None:
        """Close the peer connection once, whoever asks and however often.

        The close runs in its own task so that a caller being cancelled does
        not cancel it halfway (aiortc's close cannot be resumed).
        """
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(
                self.pc.close(), name=f"webrtc-close-{self.call_id}"
            )
        await asyncio.shield(self._closer)

    async def run(self) -> None:
        """The call from the answer to its end; the peer connection is closed."""
        try:
            first = await self._first_frame()
            if first is not None:
                await self._converse(first)
        finally:
            await self.close_pc()

    async def _first_frame(self) -> object | None:
        """The peer's first audio frame, or None: it left or sent nothing.

        aiortc starts the receiver only once DTLS is up, so a connection
        closed before that never ends the track: watch `_gone` as well.
        """
        wait = self._settings.media_timeout_s
        loop = asyncio.get_running_loop()
        first = loop.create_task(self._receive_first(), name=f"first-{self.call_id}")
        gone = loop.create_task(self._gone.wait(), name=f"gone-{self.call_id}")
        try:
            await asyncio.wait(
                {first, gone}, timeout=wait, return_when="FIRST_COMPLETED"
            )
        finally:
            for task in (first, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                    await task
        if first.done() and not first.cancelled() and first.exception() is None:
            return first.result()
        if gone.done() or first.done():
            PROCESS["webrtc_closed_before_media"] += 1
            return None
        PROCESS["webrtc_media_timeouts"] += 1
        log.warning("webrtc peer sent no audio within %.1f s", wait, extra=self._extra)
        return None

    async def _receive_first(self) -> object:
        await self._track_seen.wait()
        assert self._inbound is not None
        return await self._inbound.recv()

    async def _converse(self, first: object) -> None:
        started = Started(
            stream_id=new_id(),
            provider_call_id=self.call_id,
            encoding=Encoding.PCMU,
            token=self._token,
            custom_parameters={},
        )
        gate = self._gate
        session = CallSession(
            plan=self.plan,
            started=started,
            carrier=WebRtcCarrier(self.outbound, self.close_pc),
            observer=gate.observer,
            agent_config=gate.agent,
            amd=gate.amd,
            lag=gate.lag,
        )
        self.session = session
        await session.begin()
        loop = asyncio.get_running_loop()
        helpers = [
            loop.create_task(self._echo_marks(session), name=f"marks-{self.call_id}"),
            loop.create_task(self._watch(), name=f"peer-watch-{self.call_id}"),
        ]
        reason = "peer closed the connection"
        try:
            await self._feed(session, first)
            reason = await self._pump(session)
        finally:
            for task in helpers:
                task.cancel()
            results = await asyncio.gather(*helpers, return_exceptions=True)
            for task, result in zip(helpers, results, strict=True):
                if isinstance(result, Exception):
                    log.error(
                        "%s failed", task.get_name(), exc_info=result, extra=self._extra
                    )
            self._count(session)
            if not session.ended:
                await session.on_carrier_gone(reason)

    async def _pump(self, session: CallSession) -> str:
        track = self._inbound
        assert track is not None
        while not session.ended:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return "peer ended the call"
            await self._feed(session, frame)
        return "session ended"

    async def _feed(self, session: CallSession, frame: object) -> None:
        # One frame PyAV cannot take is counted and skipped, never fatal.
        if not isinstance(frame, av.AudioFrame):
            self._bad_frame(f"not audio: {type(frame).__name__}")
            return
        try:
            payloads = self.framer.push(frame)
        except ValueError as exc:  # av.FFmpegError is one too
            self._bad_frame(str(exc))
            return
        for payload in payloads:
            self._chunk += 1
            await session.on_media(self._chunk, payload)

    def _bad_frame(self, detail: str) -> None:
        self.bad_frames += 1
        _warn.warning(
            "webrtc:bad_frame", "webrtc: skipped an inbound frame (%s)", detail[:120]
        )

    async def _echo_marks(self, session: CallSession) -> None:
        while True:
            name = await self.outbound.played.get()
            try:
                await session.on_mark(name)
            except Exception:  # one failed echo must not stop the others
                log.exception("mark echo failed", extra=self._extra)

    async def _watch(self) -> None:
        # ICE failure or a closed DTLS transport: stop the track so the pump
        # sees the end (aiortc stops receivers only on close).
        await self._gone.wait()
        await self.close_pc()

    def _count(self, session: CallSession) -> None:
        framer = self.framer
        for key, n in (
            ("gaps", framer.gaps),
            ("silence_frames", framer.silence_samples // FRAME_SAMPLES),
            ("bad_frames", self.bad_frames),
            ("outbound_dropped_frames", self.outbound.dropped_frames),
        ):
            if n:
                session.counters.bump(key, n)


# The transport: offers in, answers out, one owned task per call.


class WebRtcTransport:
    """Answers offers and owns every WebRTC call until it ends."""

    def __init__(self, gate: StreamGate, settings: WebRtcSettings | None = None):
        self.settings = settings or WebRtcSettings()
        self._gate = gate
        self.calls: dict[str, WebRtcCall] = {}
        self.recent: deque[CallSession] = deque(maxlen=256)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        use_host_addresses(self.settings.ice_host_addresses)

    async def answer(self, sdp: str, kind: str, token: str | None) -> str:
        """Answer one offer for the call its token names; returns the answer SDP.

        Raises:
            TokenError: the token is missing, bad or expired (no connection made).
            OfferError: not an offer, no audio, SDP refused, unknown or busy call.
        """
        call_id = self._verify(token)
        plan = await self._gate.plans.plan_for(call_id)
        if plan is None:
            PROCESS["unknown_calls"] += 1
            raise OfferError("unknown_call", "unknown call")
        if kind != "offer":
            raise OfferError("bad_offer", f"expected an offer, got {kind[:20]!r}")
        if call_id in self.calls:
            raise OfferError("busy", "the call already has a peer connection")

        # No STUN or TURN: the default STUN server is on the internet.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        PROCESS["webrtc_peer_connections"] += 1
        call = WebRtcCall(plan, token or "", pc, self._gate, self.settings)
        self.calls[call_id] = call  # taken now: a second offer meanwhile is busy
        try:
            answer_sdp = await self._negotiate(call, sdp)
        except BaseException:
            self.calls.pop(call_id, None)
            await call.close_pc()
            raise
        self._own(call)
        log.info("webrtc offer answered", extra={"call_id": call_id})
        return answer_sdp

    async def add_candidate(
        self,
        token: str | None,
        candidate: str | None,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        """A trickled remote candidate; an empty one means end of candidates."""
        call = self._live_call(self._verify(token))
        if not candidate:
            await call.pc.addIceCandidate(None)
            return
        try:
            parsed = candidate_from_sdp(candidate.split(":", 1)[-1])
            parsed.sdpMid = sdp_mid
            parsed.sdpMLineIndex = sdp_mline_index
            await call.pc.addIceCandidate(parsed)
        except (ValueError, IndexError, AssertionError) as exc:
            # aiortc checks a candidate's shape with assert statements.
            raise OfferError("bad_offer", f"bad candidate: {exc!r}") from exc

    async def hang_up(self, token: str | None) -> None:
        """The peer's bye: the call ends with `user_hangup`."""
        await self._live_call(self._verify(token)).hang_up()

    async def wait_closed(self, call_id: str) -> None:
        """Return once the call's peer connection is closed (at once if none)."""
        task = self._tasks.get(call_id)
        if task is not None:
            await asyncio.wait({task})

    async def close(self) -> None:
        """End every call and wait for their tasks."""
        for call in list(self.calls.values()):
            await call.hang_up()
        tasks = list(self._tasks.values())
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _verify(self, token: str | None) -> str:
        try:
            return tokens.verify(self._gate.secret, token, purpose="media")
        except TokenError as exc:
            PROCESS["tokens_refused"] += 1
            log.warning("webrtc offer refused: %s", exc)
            raise

    def _live_call(self, call_id: str) -> WebRtcCall:
        call = self.calls.get(call_id)
        if call is None:
            raise OfferError("unknown_call", "no live WebRTC call for this token")
        return call

    async def _negotiate(self, call: WebRtcCall, sdp: str) -> str:
        # Our transceiver exists before the offer is applied: aiortc picks
        # the codecs while applying it, from the preferences set by then.
        pc = call.pc
        transceiver = pc.addTransceiver(call.outbound, direction="sendrecv")
        self._prefer_codecs(transceiver)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (ValueError, KeyError, IndexError, OperationError) as exc:
            raise OfferError("bad_offer", f"SDP refused: {exc}") from exc
        if transceiver.mid is None:
            raise OfferError("bad_offer", "the offer has no audio")
        # Video or a second audio stream would fill a receive queue nobody
        # reads: answer them inactive, so that nothing is received.
        for other in pc.getTransceivers():
            if other is not transceiver:
                other.direction = "inactive"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        return str(pc.localDescription.sdp)

    def _prefer_codecs(self, transceiver: RTCRtpTransceiver) -> None:
        wanted = [name.lower() for name in self.settings.codecs]
        if not wanted:
            return
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        ranked = sorted(
            (c for c in codecs if c.mimeType.lower() in wanted),
            key=lambda c: wanted.index(c.mimeType.lower()),
        )
        transceiver.setCodecPreferences(ranked)

    def _own(self, call: WebRtcCall) -> None:
        task = asyncio.get_running_loop().create_task(
            call.run(), name=f"webrtc-{call.call_id}"
        )
        self._tasks[call.call_id] = task
        task.add_done_callback(lambda t: self._finished(call, t))

    def _finished(self, call: WebRtcCall, task: asyncio.Task[None]) -> None:
        self.calls.pop(call.call_id, None)
        self._tasks.pop(call.call_id, None)
        if call.session is not None:
            self.recent.append(call.session)
        if not task.cancelled() and task.exception() is not None:
            PROCESS["stream_crashes"] += 1
            log.error(
                "webrtc call failed",
                exc_info=task.exception(),
                extra={"call_id": call.call_id},
            )
