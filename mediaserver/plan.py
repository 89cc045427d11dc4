"""What the control plane hands the media plane for one call, and what it gets back.

The dispatcher registers a `CallPlan` before it dials; the media server
looks the plan up by the call id carried in the stream's signed token.
While the call runs, the media plane reports to a `CallObserver`. In the
embedded deployment both planes share a process and the controller is the
observer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import msgspec

from mediaserver.amd.events import Verdict
from mediaserver.amd.settings import AmdSettings


class CallPlan(msgspec.Struct, frozen=True, kw_only=True):
    call_id: str
    campaign_id: str
    conversation_id: str
    agent_url: str
    opening_script: str = ""
    leave_message_script: str = ""  # the script path spoken on "leave message"
    inject_numbers: bool = False
    from_number: str = ""
    to_number: str = ""
    variables: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    amd: AmdSettings = AmdSettings()
    max_call_s: int = 600


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """One speaker turn, as the agent runtime reports it."""

    speaker: str  # "agent" or "user"
    text: str
    start_ms: int | None = None  # stream time
    end_ms: int | None = None


class EndType:
    """Why a conversation ended (seed: conversation_end_type)."""

    AGENT_HANGUP = "agent_hangup"
    USER_HANGUP = "user_hangup"
    VOICEMAIL_ENDED = "voicemail_ended"
    TIMEOUT = "timeout"
    AMD_END_CALL = "amd_end_call"  # final action "end call" on a machine
    FAILED = "failed"  # media or agent failure


class CallOutcome(msgspec.Struct, frozen=True, kw_only=True):
    call_id: str
    conversation_id: str
    started_at: dt.datetime  # media start (answer)
    ended_at: dt.datetime
    end_type: str
    verdict: Verdict | None = None
    turns: list[Turn] = []
    error: str | None = None


class PlanSource(Protocol):
    async def plan_for(self, call_id: str) -> CallPlan | None: ...


class CallObserver(Protocol):
    async def call_answered(self, call_id: str, at: dt.datetime) -> None: ...

    async def call_verdict(self, call_id: str, verdict: Verdict) -> None: ...

    async def call_ended(self, outcome: CallOutcome) -> None: ...
