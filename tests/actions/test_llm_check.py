"""Advanced voicemail verification against the loopback OpenAI-compatible fake."""

from __future__ import annotations

import base64
import io
import logging
import wave

import numpy as np
import pytest

from mediaserver.amd.events import (
    AmdEvent,
    FinalAction,
    Label,
    LlmCheckWanted,
    Verdict,
)
from mediaserver.amd.llm_check import (
    check_greeting,
    greeting_wav,
    make_client,
    verify_greeting,
)
from mediaserver.amd.pipeline import AmdPipeline
from mediaserver.amd.settings import AmdSettings
from mediaserver.amd.vad import SileroVad
from mediaserver.corpus import load_manifest, read_wav
from mediaserver.testing.fake_openai import Answer, FakeOpenAI, audio_key


def _greeting(seed: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(8000 * seconds)) / 8000
    tone = 4000 * np.sin(2 * np.pi * (180 + 40 * seed) * t)
    return (tone + rng.normal(0, 300, t.size)).astype(np.int16)


MACHINE_PCM = _greeting(1)
_GREETING = "asterisk_en_vm_unavailable_ext1234_beep.wav"


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


async def _verify(
    fake: FakeOpenAI, pcm: np.ndarray, deadline_s: float = 2.0
) -> Label | None:
    client = make_client(fake.base_url, "test-key")
    try:
        return await verify_greeting(
            client, "gpt-audio-test", pcm, deadline_s, call_id="c1"
        )
    finally:
        await client.close()


async def test_the_model_hears_the_greeting_as_a_wav(fake_openai: FakeOpenAI) -> None:
    fake_openai.by_audio[audio_key(greeting_wav(MACHINE_PCM))] = Answer.json(
        {"label": "machine"}
    )
    assert await _verify(fake_openai, MACHINE_PCM) is Label.MACHINE

    (request,) = fake_openai.requests
    parts = request.body["messages"][0]["content"]
    audio = next(p for p in parts if p["type"] == "input_audio")["input_audio"]
    assert audio["format"] == "wav"
    with wave.open(io.BytesIO(base64.b64decode(audio["data"]))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (
            1,
            2,
            8000,
        )
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.array_equal(frames, MACHINE_PCM)

    prompt = request.text().lower()
    assert "busy" in prompt
    assert "not available" in prompt
    assert "still a person" in prompt
    schema = request.body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["label"]["enum"] == [
        "human",
        "machine",
        "unsure",
    ]


def _pipeline_at_check(vad: SileroVad) -> tuple[AmdPipeline, LlmCheckWanted]:
    """A real pipeline fed a corpus voicemail greeting until it asks the LLM."""
    entry = next(e for e in load_manifest() if e.name == _GREETING)
    pcm = read_wav(entry.path)
    pipeline = AmdPipeline(AmdSettings(llm_verification=True), vad=vad)
    for start in range(0, pcm.size, 160):  # as fast as it goes, 20 ms frames
        for event in pipeline.push(pcm[start : start + 160]):
            if isinstance(event, LlmCheckWanted):
                return pipeline, event
    raise AssertionError("the pipeline never asked for an LLM check")


async def _check(fake: FakeOpenAI, vad: SileroVad, answer: Answer) -> list[AmdEvent]:
    pipeline, request = _pipeline_at_check(vad)
    assert request.provisional.label is Label.MACHINE
    fake.by_audio[audio_key(greeting_wav(pipeline.greeting_audio()))] = answer
    client = make_client(fake.base_url, "test-key")
    try:
        return await check_greeting(
            pipeline, request, client, "gpt-audio", call_id="c1"
        )
    finally:
        await client.close()


def _verdict(events: list[AmdEvent]) -> Verdict:
    (verdict,) = [e for e in events if isinstance(e, Verdict)]
    return verdict


async def test_an_agreeing_answer_confirms_the_machine(
    fake_openai: FakeOpenAI, vad: SileroVad
) -> None:
    verdict = _verdict(
        await _check(fake_openai, vad, Answer.json({"label": "machine"}))
    )
    assert verdict.label is Label.MACHINE
    assert verdict.source == "fused"
    assert len(fake_openai.requests) == 1
    assert fake_openai.requests[0].audio_sha256 in fake_openai.by_audio


async def test_a_disagreeing_answer_makes_it_a_person(
    fake_openai: FakeOpenAI, vad: SileroVad
) -> None:
    events = await _check(fake_openai, vad, Answer.json({"label": "human"}))
    verdict = _verdict(events)
    assert verdict.label is Label.HUMAN
    assert verdict.source == "llm"
    assert not [e for e in events if isinstance(e, FinalAction)]  # no voicemail path


async def test_an_invalid_answer_keeps_the_acoustic_verdict(
    fake_openai: FakeOpenAI, vad: SileroVad
) -> None:
    events = await _check(fake_openai, vad, Answer(content="definitely a machine"))
    verdict = _verdict(events)
    assert verdict.label is Label.MACHINE
    assert verdict.source == "acoustic"


async def test_a_late_answer_keeps_the_acoustic_verdict(
    fake_openai: FakeOpenAI, vad: SileroVad, caplog: pytest.LogCaptureFixture
) -> None:
    late = Answer.json({"label": "human"}, delay_s=10.0)
    with caplog.at_level(logging.WARNING, logger="mediaserver.amd.llm_check"):
        events = await _check(fake_openai, vad, late)
    verdict = _verdict(events)
    assert verdict.label is Label.MACHINE  # the human answer came too late
    assert verdict.source == "acoustic"
    assert any("late" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(content="It sounds like a machine to me."),
        Answer.json({"label": "robot"}),
        Answer.json({"label": "unsure"}),
        Answer.json({"verdict": "machine"}),
        Answer.error(500),
        Answer(drop=True),
    ],
)
async def test_unusable_answers_leave_the_acoustic_verdict(
    fake_openai: FakeOpenAI, answer: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.script(answer)
    with caplog.at_level(logging.WARNING, logger="mediaserver.amd.llm_check"):
        label = await _verify(fake_openai, MACHINE_PCM)
    assert label is None
    assert caplog.records  # the fall-back is logged
    assert len(fake_openai.requests) == 1  # no SDK retries behind our deadline


def test_wav_from_bytes_matches_wav_from_array() -> None:
    assert greeting_wav(MACHINE_PCM.tobytes()) == greeting_wav(MACHINE_PCM)
