"""Shared pieces of the media tests: the rig, tokens, corpus audio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mediaserver import tokens
from mediaserver.agent.reference import ReferenceAgent
from mediaserver.amd.settings import AmdSettings
from mediaserver.corpus import default_corpus_dir, read_wav
from mediaserver.ids import new_id
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import (
    InMemoryPlans,
    MediaServer,
    OutcomeLog,
)
from mediaserver.plan import CallPlan

SECRET = "media-test-secret-7f3a"
SPEED = 20.0  # tests play recordings 20x faster than real time


class Rig:
    """Server, agent, plans and outcomes of one test."""

    def __init__(
        self,
        server: MediaServer,
        agent: ReferenceAgent,
        plans: InMemoryPlans,
        outcomes: OutcomeLog,
        engine: AmdEngine,
    ) -> None:
        self.server = server
        self.agent = agent
        self.plans = plans
        self.outcomes = outcomes
        self.engine = engine

    def plan(self, **overrides: Any) -> tuple[CallPlan, str]:
        """Register a plan for a new call; returns it with its media token."""
        fields = {"campaign_id": "camp-1", "agent_url": self.agent.url, **overrides}
        return register_plan(self.plans, media_token, fields)


def register_plan(
    plans: InMemoryPlans, token: Callable[[str], str], overrides: dict[str, Any]
) -> tuple[CallPlan, str]:
    """Add a plan for a new call (stock scripts unless `overrides` name others).

    Returns the plan with `token(call_id)` for the call id drawn here.
    """
    call_id = new_id()
    fields: dict[str, Any] = {
        "call_id": call_id,
        "conversation_id": new_id(),
        "opening_script": "Hello, this is Callwright about your order.",
        "leave_message_script": "Sorry we missed you.",
    }
    fields.update(overrides)
    plan = CallPlan(**fields)
    plans.add(plan)
    return plan, token(call_id)


def media_token(call_id: str, ttl_s: int = 600) -> str:
    return tokens.issue(SECRET.encode(), call_id, ttl_s=ttl_s, purpose="media")


def corpus_audio(name: str) -> NDArray[np.int16]:
    return read_wav(default_corpus_dir() / name)


def silence(seconds: float) -> NDArray[np.int16]:
    return np.zeros(int(seconds * 8000), np.int16)


def amd(**overrides: Any) -> AmdSettings:
    return AmdSettings(**overrides)
