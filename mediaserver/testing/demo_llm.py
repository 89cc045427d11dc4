"""The campaign demo's stand-in model: deterministic answers a test can predict.

`demo_rule` plugs into `FakeOpenAI(rule=...)` and answers the two requests
the service makes of an OpenAI-compatible server:

- voicemail verification (an `input_audio` greeting, schema
  `greeting_label`): "machine" when the greeting lasts at least
  `MACHINE_AFTER_S`, else "human";
- post-call analysis (schema `post_analysis`): the summary, tags and fields
  read off the call context with plain rules (the end type, the agent's
  opening line), in exactly the schema the request asked for.

Anything else is declined (None), so the fake's script or default answers.
"""

from __future__ import annotations

import io
import re
import wave
from typing import Any

import msgspec

from mediaserver.testing.fake_openai import Answer

MACHINE_AFTER_S = 1.0
_GREETED = re.compile(r"^Agent: Hello (?P<name>[A-Z][a-z]+)\b", re.MULTILINE)


def demo_rule(body: dict[str, Any], wav: bytes | None) -> Answer | None:
    """The answer to one chat-completions request body, or None to decline."""
    schema_name = _schema_name(body)
    if wav is not None and schema_name == "greeting_label":
        return Answer.json({"label": greeting_label(wav)})
    if schema_name == "post_analysis":
        context = _context(body)
        if context is not None:
            schema = body["response_format"]["json_schema"]["schema"]
            return Answer.json(analyse(context, schema))
    return None


def greeting_label(wav: bytes) -> str:
    """The verification rule: long greetings are machines."""
    try:
        with wave.open(io.BytesIO(wav)) as reader:
            seconds = reader.getnframes() / reader.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return "unsure"
    return "machine" if seconds >= MACHINE_AFTER_S else "human"


def analyse(context: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Summary, tags and fields for one call, shaped by the response schema."""
    end_type = str(context.get("conversation_end_type") or "")
    transcript = str(context.get("conversation_turns_simplified") or "")
    greeted = _GREETED.search(transcript)
    voicemail = end_type == "voicemail_ended"

    props = schema.get("properties", {})
    answer: dict[str, Any] = {}
    if "summary" in props:
        who = greeted.group("name") if greeted else "the callee"
        what = "left a voicemail for" if voicemail else "spoke with"
        answer["summary"] = f"The agent {what} {who}; the call ended: {end_type}."
    if "tags" in props:
        allowed = props["tags"].get("items", {}).get("enum", [])
        wanted = ["voicemail"] if voicemail else ["reached"]
        if not greeted:
            wanted.append("no_greeting")
        answer["tags"] = [tag for tag in wanted if tag in allowed]
    if "fields" in props:
        values = {
            "customer_name": greeted.group("name") if greeted else None,
            "left_message": voicemail,
            "end_type": end_type or None,
        }
        names = props["fields"].get("properties", {})
        answer["fields"] = {name: values.get(name) for name in names}
    return answer


def _schema_name(body: dict[str, Any]) -> str:
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return ""
    return str(response_format.get("json_schema", {}).get("name", ""))


def _context(body: dict[str, Any]) -> dict[str, Any] | None:
    """The call context the analysis prompt carries as JSON after its label."""
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str):
            _, _, payload = content.partition("\n")
            try:
                return msgspec.json.decode(payload, type=dict[str, Any])
            except msgspec.DecodeError:
                return None
    return None
