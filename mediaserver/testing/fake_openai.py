"""An OpenAI-compatible server on loopback: `/v1/chat/completions`, scripted.

Answers come, in order of precedence, from `by_audio` (keyed by the
sha256 of the WAV bytes in a request's `input_audio` part, so a test can
say "this greeting is a machine"), then from `rule` (a function of the
request body and those WAV bytes that may decline with None: a
deterministic stand-in model), then from the `script` queue, then
`default`. An `Answer` is model text (valid or not: the fake does not
care), an HTTP error in the API's error shape, a late answer, or a
dropped connection. Every request is kept in `requests` for assertions.
See reference/carriers.md section 4.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from mediaserver.testing.loopback_http import LoopbackFake, Request, Response


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    content: str = ""  # the assistant message's text
    status: int = 200
    delay_s: float = 0.0
    drop: bool = False

    @classmethod
    def json(cls, value: Any, **kw: Any) -> Answer:
        """Model text that is the JSON encoding of `value`."""
        return cls(content=msgspec.json.encode(value).decode(), **kw)

    @classmethod
    def error(cls, status: int = 500, **kw: Any) -> Answer:
        return cls(status=status, **kw)


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request as the fake saw it."""

    body: dict[str, Any]
    headers: dict[str, str]
    audio_sha256: str | None  # of the first input_audio part's decoded bytes
    answer: Answer

    def text(self) -> str:
        """All the text parts of all messages, joined."""
        out: list[str] = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out += [p.get("text", "") for p in content if p.get("type") == "text"]
        return "\n".join(out)


# A stand-in model: (request body, input audio WAV or None) -> answer or None.
Rule = Callable[[dict[str, Any], bytes | None], Answer | None]


def audio_key(wav: bytes) -> str:
    """The key `by_audio` uses for a WAV file."""
    return hashlib.sha256(wav).hexdigest()


class FakeOpenAI(LoopbackFake):
    """Serves scripted chat completions at `base_url` (ends in /v1)."""

    def __init__(
        self, *, default: Answer | None = None, rule: Rule | None = None
    ) -> None:
        super().__init__(self._handle)
        self.requests: list[ChatRequest] = []
        self.by_audio: dict[str, Answer] = {}
        self.rule = rule
        self.default = default or Answer(content="{}")
        self._script: deque[Answer] = deque()
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()

    @property
    def base_url(self) -> str:
        return f"{self._server.url}/v1"

    def script(self, *answers: Answer) -> None:
        self._script.extend(answers)

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[ChatRequest]:
        """Wait until `count` requests have arrived; returns them all."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def _handle(self, request: Request) -> Response | None:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return _error(404, f"no route {request.method} {request.path}")
        try:
            body = msgspec.json.decode(request.body, type=dict[str, Any])
        except msgspec.DecodeError:
            return _error(400, "request body is not JSON")

        wav = _input_audio(body)
        key = None if wav is None else (audio_key(wav) if wav else "invalid-base64")
        answer = self._pick(key, body, wav or None)
        async with self._arrived:
            self.requests.append(
                ChatRequest(
                    body=body, headers=request.headers, audio_sha256=key, answer=answer
                )
            )
            self._arrived.notify_all()
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if answer.drop:
            return None
        if answer.status != 200:
            return _error(answer.status, "scripted failure")
        return Response(body=self._completion(str(body.get("model", "")), answer))

    def _pick(self, key: str | None, body: dict[str, Any], wav: bytes | None) -> Answer:
        if key is not None and key in self.by_audio:
            return self.by_audio[key]
        if self.rule is not None and (ruled := self.rule(body, wav)) is not None:
            return ruled
        return self._script.popleft() if self._script else self.default

    def _completion(self, model: str, answer: Answer) -> bytes:
        # The fields ChatCompletion requires (carriers.md 4.3).
        completion = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {
                        "role": "assistant",
                        "content": answer.content,
                        "refusal": None,
                    },
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return msgspec.json.encode(completion)


def _input_audio(body: dict[str, Any]) -> bytes | None:
    """The first input_audio part's decoded bytes; b"" when not base64."""
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict) and part.get("type") == "input_audio":
                data = part.get("input_audio", {}).get("data", "")
                try:
                    return base64.b64decode(data, validate=True)
                except ValueError:
                    return b""
    return None


def _error(status: int, message: str) -> Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    error = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Response(status=status, body=msgspec.json.encode(error))
