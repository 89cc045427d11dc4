"""The corpus demo's function on two recordings, fast."""

from __future__ import annotations

import pytest

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
