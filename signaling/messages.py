"""The JSON bodies of WebRTC signaling (carriers.md section 5.1).

An offer is `RTCSessionDescription.toJSON()` plus the call's media token;
a trickled candidate is `RTCIceCandidate.toJSON()` plus the token. The
token field may be absent so that its absence is refused as a token fault
(403), not as a malformed body.
"""

from __future__ import annotations

import msgspec


class OfferBody(msgspec.Struct, frozen=True, kw_only=True):
    sdp: str
    type: str
    token: str | None = None


class AnswerBody(msgspec.Struct, frozen=True, kw_only=True):
    sdp: str
    type: str = "answer"


class CandidateBody(msgspec.Struct, frozen=True, kw_only=True):
    """One remote candidate; `candidate` empty or null ends the candidates."""

    token: str | None = None
    candidate: str | None = None
    sdpMid: str | None = None  # the browser's field names
    sdpMLineIndex: int | None = None


class ByeBody(msgspec.Struct, frozen=True, kw_only=True):
    token: str | None = None


class SignalingErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: str
    status_code: int
