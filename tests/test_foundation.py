"""The shared seams: G.711 tables, call tokens, masking, the model pin."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mediaserver import tokens
from mediaserver.amd import model
from mediaserver.codecs import g711
from mediaserver.errors import ModelError, TokenError
from mediaserver.logs import CallContext, mask_number, mask_text

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference implementation, gone in 3.13

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_BYTES = bytes(range(256))


def test_ulaw_encode_matches_reference_for_every_sample() -> None:
    assert g711.pcm_to_ulaw(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)


def test_ulaw_decode_matches_reference_for_every_byte() -> None:
    expected = audioop.ulaw2lin(ALL_BYTES, 2)
    assert g711.ulaw_to_pcm(ALL_BYTES).tobytes() == expected


def test_alaw_matches_reference_both_ways() -> None:
    assert g711.pcm_to_alaw(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES.tobytes(), 2)
    assert g711.alaw_to_pcm(ALL_BYTES).tobytes() == audioop.alaw2lin(ALL_BYTES, 2)


def test_silence_bytes_decode_to_zero() -> None:
    assert g711.ulaw_to_pcm(bytes([g711.ULAW_SILENCE]))[0] == 0
    assert abs(int(g711.alaw_to_pcm(bytes([g711.ALAW_SILENCE]))[0])) <= 8


def test_token_round_trip_and_refusals() -> None:
    secret = b"s3cret"
    token = tokens.issue(secret, "call-1", ttl_s=60)
    assert tokens.verify(secret, token) == "call-1"

    tampered = token.replace("call-1", "call-2")
    with pytest.raises(TokenError, match="signature"):
        tokens.verify(secret, tampered)
    with pytest.raises(TokenError, match="signature"):
        tokens.verify(b"other", token)
    with pytest.raises(TokenError, match="signature"):
        tokens.verify(secret, token, purpose="agent")
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(secret, token, now=time.time() + 120)
    with pytest.raises(TokenError, match="missing"):
        tokens.verify(secret, None)
    with pytest.raises(TokenError, match="malformed"):
        tokens.verify(secret, "garbage")


def test_phone_numbers_are_masked() -> None:
    masked = mask_number("+14155550123")
    assert "5550" not in masked
    assert masked.endswith("23")
    assert "4155550123" not in mask_text("call +1 415 555 0123 now")


def test_missing_model_names_file_and_command(tmp_path: Path) -> None:
    missing = tmp_path / "silero_vad.onnx"
    with pytest.raises(ModelError) as err:
        model.verified_model_path(missing)
    assert str(missing) in str(err.value)
    assert "make setup" in str(err.value)


def test_corrupt_model_is_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "silero_vad.onnx"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="corrupt"):
        model.verified_model_path(corrupt)


def test_installed_model_matches_pin() -> None:
    assert model.verified_model_path() == model.default_model_path()


def test_log_lines_name_their_call() -> None:
    context = CallContext()
    with_call = logging.LogRecord("x", logging.INFO, "f", 1, "verdict", None, None)
    with_call.call_id = "01a23eda-6653-7000-9f32-81027536cd5d"
    without = logging.LogRecord("x", logging.INFO, "f", 1, "started", None, None)
    assert context.filter(with_call)
    assert context.filter(without)
    assert getattr(with_call, "call") == " [call 01a23eda-6653]"  # noqa: B009
    assert getattr(without, "call") == ""  # noqa: B009
