"""Messages between the media server and an agent runtime (docs/agent-protocol.md).

One WebSocket per call; the media server is the client. JSON text frames
carry the messages below, tagged by `type`; binary frames carry audio in
the call's codec (G.711 mu-law or A-law, 8 kHz mono, no header), as
announced in `start.media_format`. Sans-I/O: plain Structs plus one
decode function for each direction.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mediaserver.amd.events import Verdict

PROTOCOL_VERSION = "1"


class MediaFormat(msgspec.Struct, frozen=True, kw_only=True):
    encoding: str  # "pcmu" or "pcma"
    sample_rate: int = 8000
    channels: int = 1
    frame_ms: int = 20


# Server -> agent.


class _ToAgent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class SessionStart(_ToAgent, tag="start", frozen=True, kw_only=True):
    protocol: str = PROTOCOL_VERSION
    token: str  # the same per-call agent token as the Authorization header
    call_id: str
    campaign_id: str
    conversation_id: str
    stream_id: str
    carrier: str
    media_format: MediaFormat
    opening_script: str = ""
    leave_message_script: str = ""
    variables: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    from_number: str | None = None  # only when the campaign injects numbers
    to_number: str | None = None
    amd_enabled: bool = True


class VerdictEvent(_ToAgent, tag="verdict", frozen=True, kw_only=True):
    verdict: Verdict


class StopSpeakingEvent(_ToAgent, tag="stop_speaking", frozen=True, kw_only=True):
    at_ms: int
    reason: str


class BeepEvent(_ToAgent, tag="beep", frozen=True, kw_only=True):
    onset_ms: int
    end_ms: int
    frequency_hz: float


class GreetingEndedEvent(_ToAgent, tag="greeting_ended", frozen=True, kw_only=True):
    at_ms: int
    by: str


class FinalActionEvent(_ToAgent, tag="final_action", frozen=True, kw_only=True):
    action: str  # "leave_message" or "end_call"
    at_ms: int
    reason: str
    script: str = ""  # the leave-message script path, for leave_message


class DtmfEvent(_ToAgent, tag="dtmf", frozen=True, kw_only=True):
    digit: str
    at_ms: int


class MarkEvent(_ToAgent, tag="mark", frozen=True, kw_only=True):
    name: str
    played: bool  # False: dropped by a clear before it reached the carrier


class SessionEnd(_ToAgent, tag="end", frozen=True, kw_only=True):
    end_type: str
    reason: str = ""


ToAgent = (
    SessionStart
    | VerdictEvent
    | StopSpeakingEvent
    | BeepEvent
    | GreetingEndedEvent
    | FinalActionEvent
    | DtmfEvent
    | MarkEvent
    | SessionEnd
)


# Agent -> server.


class _FromAgent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class AgentMark(_FromAgent, tag="mark", frozen=True, kw_only=True):
    name: str


class AgentClear(_FromAgent, tag="clear", frozen=True, kw_only=True):
    pass


class AgentTurn(_FromAgent, tag="turn", frozen=True, kw_only=True):
    speaker: str  # "agent" or "user"
    text: str
    start_ms: int | None = None
    end_ms: int | None = None


class AgentHangup(_FromAgent, tag="hangup", frozen=True, kw_only=True):
    reason: str = ""


FromAgent = AgentMark | AgentClear | AgentTurn | AgentHangup

_from_agent = msgspec.json.Decoder(FromAgent)
_to_agent = msgspec.json.Decoder(ToAgent)
_encoder = msgspec.json.Encoder()


def encode(message: ToAgent | FromAgent) -> bytes:
    """JSON for a text frame."""
    return _encoder.encode(message)


def decode_from_agent(data: str | bytes) -> FromAgent:
    """Raises msgspec.DecodeError on a message outside the protocol."""
    return _from_agent.decode(data)


def decode_to_agent(data: str | bytes) -> ToAgent:
    """For agent runtimes written in Python (the reference agent uses it)."""
    return _to_agent.decode(data)
