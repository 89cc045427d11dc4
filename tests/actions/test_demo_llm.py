"""The demo's stand-in model answers in the shape our parsers accept."""

from __future__ import annotations

import io
import wave

import msgspec

from mediaserver.campaign_demo import POST_ANALYSIS
from mediaserver.controller.actions import PostAnalysisTemplate
from mediaserver.controller.analysis import messages_for, parse_result, response_schema
from mediaserver.testing.demo_llm import demo_rule, greeting_label


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\0\0" * int(8000 * seconds))
    return out.getvalue()


def test_long_greetings_are_machines_short_ones_human() -> None:
    assert greeting_label(_wav(3.5)) == "machine"
    assert greeting_label(_wav(0.6)) == "human"
    assert greeting_label(b"not a wav") == "unsure"


def _analysis_body(context: dict[str, object]) -> dict[str, object]:
    template = msgspec.convert(POST_ANALYSIS, PostAnalysisTemplate)
    return {
        "messages": messages_for(template, context),
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "post_analysis",
                "schema": response_schema(template),
            },
        },
    }


def test_analysis_answer_fits_the_template() -> None:
    template = msgspec.convert(POST_ANALYSIS, PostAnalysisTemplate)
    context = {
        "conversation_end_type": "voicemail_ended",
        "conversation_turns_simplified": "Agent: Hello Avery, this is us.\nAgent: Bye",
    }
    answer = demo_rule(_analysis_body(context), None)
    assert answer is not None
    result = parse_result(template, answer.content)
    assert result.tags == ["voicemail"]
    assert result.fields == {
        "customer_name": "Avery",
        "left_message": True,
        "end_type": "voicemail_ended",
    }
    assert result.summary is not None
    assert "voicemail" in result.summary

    spoken = {"conversation_end_type": "user_hangup"}
    other = demo_rule(_analysis_body(spoken), None)
    assert other is not None
    parsed = parse_result(template, other.content)
    assert parsed.tags == ["reached", "no_greeting"]
    assert parsed.fields["left_message"] is False


def test_other_requests_are_declined() -> None:
    assert demo_rule({"messages": []}, None) is None
