"""Advanced voicemail verification: ask an audio model about the greeting.

When a campaign enables `llm_verification`, the pipeline hands over the
greeting audio at a provisional machine verdict; `verify_greeting` sends it
as a PCM16 WAV (stdlib `wave`, base64) in an `input_audio` content part
(reference/carriers.md 4.3) with a strict JSON schema whose only field is a
label: human, machine or unsure. The answer must arrive within a hard
deadline; anything late, invalid or unsure gives None and the acoustic
verdict stands. `check_greeting` is the glue the media session runs on the
pipeline's `LlmCheckWanted`; the pipeline's verdict machine (amd/verdict.py)
decides how the answer joins the acoustic verdict.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
import wave
from typing import Protocol

import msgspec
import numpy as np
import openai
from numpy.typing import NDArray
from openai import AsyncOpenAI
from openai.types.chat import (
    ChatCompletionContentPartInputAudioParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema

from mediaserver.amd.events import AmdEvent, Label, LlmCheckWanted

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000

PROMPT = (
    "You hear the first seconds after an outbound phone call was answered. "
    "Decide who answered. Answer 'machine' only for a recorded greeting, a "
    "voicemail or answering machine prompt, a carrier announcement, or a beep. "
    "Answer 'human' for a live person, even one who says they are busy, that "
    "now is not a good time, or that the person asked for is not available: "
    "that is still a person talking. Answer 'unsure' when you cannot tell. "
    'Reply with JSON only: {"label": "human" | "machine" | "unsure"}.'
)

LABEL_SCHEMA: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "greeting_label",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["human", "machine", "unsure"]}
            },
            "required": ["label"],
            "additionalProperties": False,
        },
    },
}


class _LabelAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    label: str


def greeting_wav(pcm: bytes | np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono PCM16 samples (int16, 8 kHz) as a complete WAV file."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buffer.getvalue()


def make_client(base_url: str, api_key: str, timeout_s: float = 10.0) -> AsyncOpenAI:
    """A client for verification: no SDK retries, the deadline is ours."""
    return AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s
    )


async def verify_greeting(
    client: AsyncOpenAI,
    model: str,
    pcm: bytes | np.ndarray,
    deadline_s: float,
    *,
    call_id: str = "",
) -> Label | None:
    """HUMAN or MACHINE from the model within `deadline_s`, else None.

    None means: no usable answer (late, failed, invalid or unsure); the
    reason is logged and the caller keeps its acoustic verdict.
    """
    wav = greeting_wav(pcm)
    extra = {"call_id": call_id}
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline_s):
            completion = await client.with_options(
                max_retries=0, timeout=deadline_s
            ).chat.completions.create(
                model=model,
                modalities=["text"],
                response_format=LABEL_SCHEMA,
                messages=_messages(wav),
            )
    except TimeoutError:
        log.warning("LLM verification late (deadline %.2f s)", deadline_s, extra=extra)
        return None
    except openai.APITimeoutError:
        log.warning("LLM verification timed out in the client", extra=extra)
        return None
    except openai.OpenAIError as exc:
        log.warning("LLM verification failed: %s", type(exc).__name__, extra=extra)
        return None

    label = _parse_label(
        completion.choices[0].message.content if completion.choices else None
    )
    elapsed_ms = (time.monotonic() - started) * 1000
    if label is None:
        log.warning(
            "LLM verification answer unusable after %.0f ms", elapsed_ms, extra=extra
        )
    else:
        log.info(
            "LLM verification says %s in %.0f ms", label.value, elapsed_ms, extra=extra
        )
    return label


def _messages(wav: bytes) -> list[ChatCompletionMessageParam]:
    audio: ChatCompletionContentPartInputAudioParam = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"},
    }
    text: ChatCompletionContentPartTextParam = {"type": "text", "text": PROMPT}
    return [{"role": "user", "content": [text, audio]}]


def _parse_label(content: str | None) -> Label | None:
    if not content:
        return None
    try:
        answer = msgspec.json.decode(content.strip(), type=_LabelAnswer)
    except msgspec.DecodeError:
        return None
    if answer.label == "human":
        return Label.HUMAN
    if answer.label == "machine":
        return Label.MACHINE
    return None  # "unsure" or out of schema


class GreetingSource(Protocol):
    """What `check_greeting` needs of an `AmdPipeline`."""

    @property
    def stream_ms(self) -> int: ...

    def greeting_audio(self) -> NDArray[np.int16]: ...

    def llm_answer(self, label: Label | None) -> list[AmdEvent]: ...


async def check_greeting(
    pipeline: GreetingSource,
    request: LlmCheckWanted,
    client: AsyncOpenAI,
    model: str,
    *,
    call_id: str = "",
) -> list[AmdEvent]:
    """Ask the model about the greeting; give the pipeline its answer.

    The media session runs this as its own task on `LlmCheckWanted` and
    handles the returned events like those of `push`. The wall-clock
    deadline is what is left of the request's stream-time deadline (audio
    arrives in real time); the pipeline also enforces it on stream time, so
    an answer that lands after the verdict went out changes nothing.
    """
    remaining_s = (request.deadline_ms - pipeline.stream_ms) / 1000
    label: Label | None = None
    if remaining_s > 0:
        audio = pipeline.greeting_audio()
        label = await verify_greeting(
            client, model, audio, remaining_s, call_id=call_id
        )
    else:
        log.warning(
            "LLM verification asked too late to run", extra={"call_id": call_id}
        )
    return pipeline.llm_answer(label)
