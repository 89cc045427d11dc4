"""Post-call analysis: a template's summary, tags and fields, from an LLM.

When an answered call ends and its campaign has a post-analysis template,
the outbox writes a `call_analyses` row holding the template and exactly
the seed's post-analysis context variables. `AnalysisWorker` works those
rows off on its own task: it asks an OpenAI-compatible model through the
`openai` SDK (no SDK retries; our own bounded ones, with backoff) for JSON
that a strict schema built from the template describes, checks the answer
against the template (tags from the allowed list only, fields typed), and
stores the result, or the last error once the attempts run out. A slow or
failing model holds up only this worker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from typing import Any

import msgspec
import openai
import sqlalchemy as sa
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from sqlalchemy.ext.asyncio import AsyncEngine

from mediaserver.clock import Clock
from mediaserver.controller.actions import FieldSpec, PostAnalysisTemplate
from mediaserver.controller.delivery import DEFAULT_BACKOFF, BackoffPolicy
from mediaserver.errors import LlmError
from mediaserver.store.outbox_tables import aware, call_analyses, claim_due

log = logging.getLogger(__name__)


_JSON_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "date": "string",
}


class AnalysisResult(msgspec.Struct, frozen=True, kw_only=True):
    summary: str | None = None
    tags: list[str] = []
    fields: dict[str, Any] = {}


def response_schema(template: PostAnalysisTemplate) -> dict[str, Any]:
    """The strict JSON schema the model must answer in (OpenAI structured output)."""
    props: dict[str, Any] = {}
    if template.summary:
        props["summary"] = {"type": "string", "description": "a short summary"}
    if template.tags:
        props["tags"] = {
            "type": "array",
            "items": {"type": "string", "enum": list(template.tags)},
            "description": f"at most {template.max_tags} tags that apply",
        }
    if template.fields:
        fields = {spec.name: _field_schema(spec) for spec in template.fields}
        props["fields"] = {
            "type": "object",
            "properties": fields,
            "required": list(fields),  # strict mode: optional ones are nullable
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    kind = _JSON_TYPES[spec.type]
    schema: dict[str, Any] = {"type": kind if spec.required else [kind, "null"]}
    if spec.type == "date":
        schema["description"] = "a date as YYYY-MM-DD"
    if spec.description:
        schema["description"] = spec.description
    if spec.enum is not None:
        schema["enum"] = [*spec.enum, *([] if spec.required else [None])]
    return schema


def messages_for(
    template: PostAnalysisTemplate, context: dict[str, Any]
) -> list[ChatCompletionMessageParam]:
    """The prompt: the template's instructions, then the call's context as JSON."""
    rules = [
        "You analyse a finished phone call between an AI agent and a person.",
        "Answer only with JSON in the given schema.",
    ]
    if template.tags:
        rules.append(
            f"Pick at most {template.max_tags} tags, only from: "
            + ", ".join(template.tags)
        )
    for spec in template.fields:
        need = "required" if spec.required else "null when the call does not say"
        rules.append(f"Field {spec.name} ({spec.type}, {need}): {spec.description}")
    if template.instructions:
        rules.append(template.instructions)
    payload = msgspec.json.encode(context).decode()
    return [
        {"role": "system", "content": "\n".join(rules)},
        {"role": "user", "content": f"Call context:\n{payload}"},
    ]


def parse_result(template: PostAnalysisTemplate, content: str | None) -> AnalysisResult:
    """The model's answer checked against the template.

    Raises:
        LlmError: the answer is not JSON or breaks the template (retryable:
            a model may answer well the next time).
    """
    try:
        data = msgspec.json.decode(content or "", type=dict[str, Any])
    except msgspec.DecodeError as exc:
        raise LlmError("analysis answer is not a JSON object", retryable=True) from exc

    faults: list[str] = []
    summary = data.get("summary")
    if template.summary and not (isinstance(summary, str) and summary.strip()):
        faults.append("summary missing")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        faults.append("tags is not a list of strings")
        tags = []
    unknown = [t for t in tags if t not in template.tags]
    if unknown:
        faults.append(f"tags not allowed: {unknown}")
    if len(set(tags)) > template.max_tags:
        faults.append(f"more than {template.max_tags} tags")

    raw_fields = data.get("fields", {})
    fields: dict[str, Any] = {}
    for spec in template.fields:
        value = raw_fields.get(spec.name) if isinstance(raw_fields, dict) else None
        try:
            fields[spec.name] = _field_value(spec, value)
        except ValueError as exc:
            faults.append(f"field {spec.name}: {exc}")
    if faults:
        raise LlmError(
            "analysis answer out of template: " + "; ".join(faults), retryable=True
        )
    return AnalysisResult(
        summary=summary if template.summary else None,
        tags=list(dict.fromkeys(tags)),
        fields=fields,
    )


def _field_value(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        if spec.required:
            raise ValueError("required")
        return None
    if spec.type == "boolean" and not isinstance(value, bool):
        raise ValueError("not a boolean")
    if spec.type in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"not a {spec.type}")
        if spec.type == "integer" and value != int(value):
            raise ValueError("not an integer")
        return int(value) if spec.type == "integer" else value
    if spec.type in ("string", "date") and not isinstance(value, str):
        raise ValueError("not a string")
    if spec.type == "date":
        dt.date.fromisoformat(value)  # raises ValueError on a bad date
    if spec.enum is not None and value not in spec.enum:
        raise ValueError(f"{value!r} is not one of {spec.enum}")
    return value


class Analyzer:
    """One analysis request, bounded by `timeout_s`."""

    def __init__(self, client: AsyncOpenAI, model: str, *, timeout_s: float = 30.0):
        self._base = client
        self._client = client.with_options(max_retries=0, timeout=timeout_s)
        self._model = model
        self._timeout_s = timeout_s

    @classmethod
    def connect(
        cls, base_url: str, api_key: str, model: str, *, timeout_s: float = 30.0
    ) -> Analyzer:
        client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        return cls(client, model, timeout_s=timeout_s)

    async def close(self) -> None:
        await self._base.close()

    async def analyze(
        self, template: PostAnalysisTemplate, context: dict[str, Any]
    ) -> AnalysisResult:
        """Raises `LlmError` saying whether a retry can help."""
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {
                "name": "post_analysis",
                "strict": True,
                "schema": response_schema(template),
            },
        }
        try:
            async with asyncio.timeout(self._timeout_s):
                completion = await self._client.chat.completions.create(
                    model=self._model,
                    messages=messages_for(template, context),
                    response_format=response_format,
                )
        except (TimeoutError, openai.APITimeoutError) as exc:
            raise LlmError("analysis model timed out", retryable=True) from exc
        except openai.APIStatusError as exc:
            retryable = exc.status_code >= 500 or exc.status_code in (408, 409, 429)
            raise LlmError(
                f"analysis model answered {exc.status_code}", retryable=retryable
            ) from exc
        except openai.OpenAIError as exc:
            raise LlmError(
                f"analysis model unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        content = completion.choices[0].message.content if completion.choices else None
        return parse_result(template, content)


class AnalysisWorker:
    """Works off `call_analyses`; `run()` until cancelled, or `drain()` in tests."""

    def __init__(
        self,
        engine: AsyncEngine,
        analyzer: Analyzer,
        *,
        concurrency: int = 2,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        poll_s: float = 1.0,
        lease_s: float = 300.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._analyzer = analyzer
        self._concurrency = concurrency
        self._backoff = backoff
        self._poll_s = poll_s
        self._lease = dt.timedelta(seconds=lease_s)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._rng = rng or random.Random()

    async def close(self) -> None:
        await self._analyzer.close()

    async def run(self) -> None:
        """Work due analyses until cancelled."""
        while True:
            try:
                worked = await self.drain()
            except Exception:  # the store may come back; the worker stays up
                log.exception("post-analysis worker pass failed")
                worked = 0
            if not worked:
                await asyncio.sleep(self._poll_s)

    async def drain(self) -> int:
        """Run every analysis due now, once each; returns how many were tried."""
        tried = 0
        while rows := await claim_due(
            self._engine,
            call_analyses,
            now=self._clock(),
            lease=self._lease,
            limit=self._concurrency,
        ):
            await asyncio.gather(*(self._run_one(row) for row in rows))
            tried += len(rows)
        return tried

    async def _run_one(self, row: dict[str, Any]) -> None:
        attempts = int(row["attempts"]) + 1
        extra = {"call_id": row["call_id"], "campaign_id": row["campaign_id"]}
        try:
            template = msgspec.convert(row["template"], PostAnalysisTemplate)
            result = await self._analyzer.analyze(template, dict(row["context"]))
        except (LlmError, msgspec.ValidationError) as exc:
            retryable = isinstance(exc, LlmError) and exc.retryable
            values: dict[str, Any] = {"attempts": attempts, "last_error": str(exc)}
            if retryable and attempts < int(row["max_attempts"]):
                delay = self._backoff.delay(attempts, self._rng)
                values["next_attempt_at"] = self._clock() + dt.timedelta(seconds=delay)
                log.warning(
                    "post-analysis attempt %d failed: %s", attempts, exc, extra=extra
                )
            else:
                values["status"] = "failed"
                log.warning(
                    "post-analysis gave up after %d: %s", attempts, exc, extra=extra
                )
            await self._update(row["id"], lease_until=None, **values)
            return

        await self._update(
            row["id"],
            status="done",
            attempts=attempts,
            result=msgspec.to_builtins(result),
            last_error=None,
            lease_until=None,
            completed_at=self._clock(),
        )
        log.info("post-analysis done on attempt %d", attempts, extra=extra)

    async def _update(self, row_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                call_analyses.update()
                .where(call_analyses.c.id == row_id)
                .values(**values)
            )


class AnalysisView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    call_id: str
    conversation_id: str | None
    status: str
    attempts: int
    max_attempts: int
    result: AnalysisResult | None
    last_error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None


async def get_analysis(engine: AsyncEngine, call_id: str) -> AnalysisView | None:
    """A call's analysis and its state, as the API shows it."""
    query = sa.select(call_analyses).where(call_analyses.c.call_id == call_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    data = {name: row[name] for name in AnalysisView.__struct_fields__}
    data["created_at"] = aware(row["created_at"])
    data["completed_at"] = aware(row["completed_at"])
    return msgspec.convert(data, AnalysisView)


async def retry_analysis(
    engine: AsyncEngine, call_id: str, clock: Clock | None = None
) -> bool:
    """Queue a failed analysis again; False when there is none failed."""
    now = (clock or (lambda: dt.datetime.now(dt.UTC)))()
    async with engine.begin() as conn:
        result = await conn.execute(
            call_analyses.update()
            .where(
                call_analyses.c.call_id == call_id, call_analyses.c.status == "failed"
            )
            .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
        )
    return bool(result.rowcount)
