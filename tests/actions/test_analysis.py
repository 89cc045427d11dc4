"""Post-call analysis through the openai SDK against a loopback fake model."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.controller.actions import FieldSpec, PostAnalysisTemplate
from mediaserver.controller.analysis import (
    AnalysisWorker,
    Analyzer,
    get_analysis,
    parse_result,
    response_schema,
    retry_analysis,
)
from mediaserver.controller.delivery import BackoffPolicy
from mediaserver.controller.events import LifecycleEvent
from mediaserver.controller.outbox import OutboxHooks, StaticCampaigns
from mediaserver.controller.status import CallStatus
from mediaserver.errors import LlmError
from mediaserver.store.outbox_tables import call_analyses
from mediaserver.store.queue import QueueStore
from mediaserver.testing.fake_openai import Answer, FakeOpenAI
from tests.actions.helpers import T0, CampaignStub, new_attempt
from tests.actions.seed import seed_tables

TEMPLATE = PostAnalysisTemplate(
    name="renewal",
    instructions="Say whether the customer will renew.",
    tags=["interested", "not_interested", "callback"],
    max_tags=2,
    fields=[
        FieldSpec(name="renews", type="boolean"),
        FieldSpec(name="seats", type="integer", required=False),
        FieldSpec(name="callback_on", type="date", required=False),
        FieldSpec(name="mood", enum=["calm", "angry"]),
    ],
)
GOOD = {
    "summary": "Ahmed will renew for 12 seats.",
    "tags": ["interested"],
    "fields": {"renews": True, "seats": 12, "callback_on": None, "mood": "calm"},
}
NO_WAIT = BackoffPolicy(base_s=0.0, cap_s=0.0)


async def _call_ended(engine: AsyncEngine, call_id: str = "call-1") -> None:
    hooks = OutboxHooks(
        StaticCampaigns(
            {"camp-1": CampaignStub(post_analysis=msgspec.to_builtins(TEMPLATE))}
        ),
        analysis_attempts=3,
    )
    attempt = {
        "id": call_id,
        "campaign_id": "camp-1",
        "status": "completed",
        "created_at": T0,
        "recipient_number": "+14155550123",
        "calling_number_provider": "twilio",
    }
    conversation = {
        "conversation_id": "conv-1",
        "started_at": T0,
        "ended_at": T0 + dt.timedelta(seconds=30),
        "end_type": "agent_hangup",
        "turns": [{"speaker": "user", "text": "Yes, twelve seats."}],
        "transcript": "User: Yes, twelve seats.",
    }
    async with engine.begin() as conn:
        await hooks.fire(conn, LifecycleEvent.CALL_ENDED, attempt, conversation)


def _worker(
    engine: AsyncEngine, fake: FakeOpenAI, timeout_s: float = 2.0
) -> AnalysisWorker:
    analyzer = Analyzer.connect(
        fake.base_url, "test-key", "gpt-test", timeout_s=timeout_s
    )
    return AnalysisWorker(engine, analyzer, backoff=NO_WAIT)


async def test_context_is_exactly_the_seeds_and_a_valid_answer_is_stored(
    engine: AsyncEngine, fake_openai: FakeOpenAI
) -> None:
    await _call_ended(engine)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(call_analyses))).mappings().one()
    assert list(row["context"]) == seed_tables()["post_analysis"]
    assert row["context"]["call_queue_route_id"] == "camp-1"
    assert row["context"]["conversation_turns_simplified"] == "User: Yes, twelve seats."

    fake_openai.script(Answer.json(GOOD))
    assert await _worker(engine, fake_openai).drain() == 1
    view = await get_analysis(engine, "call-1")
    assert view is not None
    assert view.status == "done"
    assert view.result is not None
    assert view.result.tags == ["interested"]
    assert view.result.fields == GOOD["fields"]
    assert view.result.summary == GOOD["summary"]

    (request,) = fake_openai.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "gpt-test"
    schema = request.body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["tags"]["items"]["enum"] == list(
        TEMPLATE.tags
    )
    assert "twelve seats" in request.text()
    assert "call_queue_route_id" in request.text()


async def test_invalid_answers_are_retried_then_recorded(
    engine: AsyncEngine, fake_openai: FakeOpenAI
) -> None:
    await _call_ended(engine)
    fake_openai.script(
        Answer(content="not json at all"),
        Answer.json({**GOOD, "tags": ["interested", "vip"]}),  # not an allowed tag
        Answer.json({**GOOD, "fields": {**GOOD["fields"], "seats": "twelve"}}),
    )
    assert await _worker(engine, fake_openai).drain() == 3
    view = await get_analysis(engine, "call-1")
    assert view is not None
    assert (view.status, view.attempts, view.result) == ("failed", 3, None)
    assert view.last_error is not None
    assert "seats" in view.last_error

    fake_openai.script(Answer.json(GOOD))
    assert await retry_analysis(engine, "call-1")
    assert await _worker(engine, fake_openai).drain() == 1
    view = await get_analysis(engine, "call-1")
    assert view is not None
    assert view.status == "done"


async def test_a_slow_model_times_out_within_bounded_attempts(
    engine: AsyncEngine, fake_openai: FakeOpenAI
) -> None:
    await _call_ended(engine)
    fake_openai.script(Answer.json(GOOD, delay_s=3.0), Answer.error(500))
    fake_openai.default = Answer.json(GOOD)
    assert await _worker(engine, fake_openai, timeout_s=0.3).drain() == 3
    view = await get_analysis(engine, "call-1")
    assert view is not None
    assert (view.status, view.attempts) == ("done", 3)
    assert len(fake_openai.requests) == 3  # the SDK itself retried nothing


async def test_a_timeout_on_every_attempt_fails_the_analysis(
    engine: AsyncEngine, fake_openai: FakeOpenAI
) -> None:
    await _call_ended(engine)
    fake_openai.default = Answer.json(GOOD, delay_s=3.0)
    assert await _worker(engine, fake_openai, timeout_s=0.2).drain() == 3
    view = await get_analysis(engine, "call-1")
    assert view is not None
    assert view.status == "failed"
    assert view.last_error == "analysis model timed out"


async def test_a_client_error_is_not_retried(
    engine: AsyncEngine, fake_openai: FakeOpenAI
) -> None:
    await _call_ended(engine)
    fake_openai.default = Answer.error(400)
    assert await _worker(engine, fake_openai).drain() == 1
    view = await get_analysis(engine, "call-1")
    assert view is not None
    assert (view.status, view.attempts) == ("failed", 1)


@pytest.mark.parametrize(
    ("answer", "fault"),
    [
        ({**GOOD, "summary": ""}, "summary"),
        ({**GOOD, "tags": ["interested", "callback", "not_interested"]}, "more than 2"),
        ({**GOOD, "fields": {**GOOD["fields"], "renews": "yes"}}, "renews"),
        ({**GOOD, "fields": {**GOOD["fields"], "seats": 1.5}}, "seats"),
        (
            {**GOOD, "fields": {**GOOD["fields"], "callback_on": "next week"}},
            "callback_on",
        ),
        ({**GOOD, "fields": {**GOOD["fields"], "mood": "happy"}}, "mood"),
        ({**GOOD, "fields": {"seats": 3, "mood": "calm"}}, "renews: required"),
    ],
)
def test_answers_out_of_template_are_refused(
    answer: dict[str, Any], fault: str
) -> None:
    with pytest.raises(LlmError) as caught:
        parse_result(TEMPLATE, msgspec.json.encode(answer).decode())
    assert fault in str(caught.value)
    assert caught.value.retryable


def test_typed_fields_are_kept() -> None:
    answer = {
        **GOOD,
        "fields": {**GOOD["fields"], "seats": 3.0, "callback_on": "2026-12-10"},
    }
    result = parse_result(TEMPLATE, msgspec.json.encode(answer).decode())
    assert result.fields["seats"] == 3
    assert isinstance(result.fields["seats"], int)
    assert result.fields["callback_on"] == "2026-12-10"
    schema = response_schema(TEMPLATE)
    assert schema["properties"]["fields"]["properties"]["seats"]["type"] == [
        "integer",
        "null",
    ]
    assert schema["required"] == ["summary", "tags", "fields"]


async def test_a_thinking_model_holds_no_lock_on_the_queue(
    engine: AsyncEngine, fake_openai: FakeOpenAI
) -> None:
    await _call_ended(engine)
    fake_openai.default = Answer.json(GOOD, delay_s=30.0)
    worker = _worker(engine, fake_openai, timeout_s=60.0)
    task = asyncio.create_task(worker.run(), name="analysis-worker")
    try:
        await fake_openai.wait_for(1)  # the model is now "thinking"
        store = QueueStore(engine)
        attempt = await store.enqueue(new_attempt(contact="meanwhile"))
        for status in (CallStatus.DISPATCHING, CallStatus.INITIATED):
            async with store.transaction() as conn:
                await store.transition(conn, attempt.id, status)
        moved = await store.get(attempt.id)
        view = await get_analysis(engine, "call-1")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await worker.close()
    assert moved is not None
    assert moved.status is CallStatus.INITIATED
    assert view is not None
    assert (view.status, view.attempts) == ("pending", 0)  # still waiting on it
