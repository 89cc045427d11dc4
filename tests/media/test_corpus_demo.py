"""The corpus demo's function on two recordings, fast."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from mediaserver.corpus import default_corpus_dir, read_wav
from mediaserver.corpus_demo import print_report, run_corpus_demo
from mediaserver.media_amd import AmdEngine

PICK = {"asterisk_en_hello_padded.wav", "synthetic_personal_greeting_3_beep1400.wav"}


async def test_demo_reports_verdicts_beep_and_final_action(
    amd_engine: AmdEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    results = await run_corpus_demo(
        None, 20.0, concurrency=2, engine=amd_engine, only=lambda e: e.name in PICK
    )
    by_file = {r.file: r for r in results}
    assert set(by_file) == PICK

    human = by_file["asterisk_en_hello_padded.wav"]
    assert (human.label, human.verdict, human.final_action) == ("human", "human", "-")
    machine = by_file["synthetic_personal_greeting_3_beep1400.wav"]
    assert machine.verdict == "machine"
    assert machine.beep_ms is not None
    assert abs(machine.beep_ms - 6568) < 60  # the manifest's onset
    assert machine.final_action == "leave_message"
    assert machine.final_ms is not None
    assert machine.final_ms >= machine.beep_ms

    print_report(results)
    out = capsys.readouterr().out
    assert "accuracy: 2/2 = 100.0 %" in out
    assert "synthetic_personal_greeting_3_beep1400.wav" in out


async def test_unplayable_files_are_rows_not_a_crash(
    amd_engine: AmdEngine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    human = tmp_path / "human"
    human.mkdir()
    hello = read_wav(default_corpus_dir() / "human" / "asterisk_en_hello_padded.wav")
    _write_wav(human / "Hello.WAV", hello, 8000)  # upper-case suffix still counts
    _write_wav(human / "wideband.wav", hello, 16000)
    (human / "broken.wav").write_text("not a wav file")

    results = await run_corpus_demo(tmp_path, 20.0, concurrency=2, engine=amd_engine)
    by_file = {r.file: r for r in results}
    assert set(by_file) == {"Hello.WAV", "wideband.wav", "broken.wav"}
    assert by_file["Hello.WAV"].verdict == "human"
    assert "8000 Hz" in by_file["wideband.wav"].error
    assert by_file["broken.wav"].error

    print_report(results)
    out = capsys.readouterr().out
    assert "accuracy: 1/1 = 100.0 %" in out
    assert "2 file(s) could not be played" in out


def _write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
