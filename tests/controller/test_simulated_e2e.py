"""End to end: queue -> dispatcher -> simulated carrier -> our media server.

The simulated callee plays corpus recordings into the real media server
(real AMD model, the reference agent on loopback), which reports answers
and endings back to the Controller. Recordings play 20x faster than real
time; the AMD counts time by samples, so its verdicts do not change.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mediaserver.agent.reference import ReferenceAgent
from mediaserver.amd.events import FinalActionKind
from mediaserver.amd.settings import AmdSettings
from mediaserver.carriers.simulated import SimulatedCarrier, read_log
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import TERMINAL, CallStatus
from mediaserver.corpus import default_corpus_dir
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import MediaServer, MediaServerSettings
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore
from tests.controller.queue_support import campaign, launch

SECRET = "queue-e2e-secret-5d1c"
CORPUS = default_corpus_dir()
MACHINE = CORPUS / "machine/asterisk_en_vm_unavailable_ext1234_beep.wav"
HUMAN = CORPUS / "human/asterisk_en_hello_padded.wav"

pytestmark = pytest.mark.skipif(
    not (MACHINE.is_file() and HUMAN.is_file()), reason=f"corpus not found at {CORPUS}"
)


@pytest.fixture(scope="module")
def amd_engine() -> AmdEngine:
    engine = AmdEngine()
    engine.warm_up()
    return engine


async def test_simulated_calls_reach_the_media_server(
    tmp_path: Path, amd_engine: AmdEngine
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    await create_schema(engine)
    carrier = SimulatedCarrier(log_path=tmp_path / "sim.log", speed=20)
    store = QueueStore(engine)

    async with ReferenceAgent(SECRET, max_speech_ms=1000) as agent:
        camp = campaign(
            agent_url=agent.url,
            opening_script="Hello from Callwright.",
            leave_message_script="Sorry we missed you.",
            amd=AmdSettings(final_action=FinalActionKind.END_CALL),
        )
        controller = Controller(
            store,
            StaticCampaigns([camp]),
            {"simulated": carrier},
            media_urls={},
            token_secret=SECRET.encode(),
            poll_s=0.05,
        )
        server = MediaServer(
            MediaServerSettings(secret=SECRET, start_timeout_s=2.0),
            plans=controller,
            observer=controller,
            amd=amd_engine,
        )
        async with server:
            controller.set_media_url("simulated", server.url("twilio"))
            carrier.bind(controller, controller)
            machine, human = await controller.enqueue(
                [
                    launch(
                        "+12125550001",
                        metadata={"sim_behavior": f"answer:{MACHINE};ring=0.1"},
                    ),
                    launch(
                        "+12125550002",
                        metadata={"sim_behavior": f"answer:{HUMAN};ring=0.1"},
                    ),
                ]
            )
            await controller.start()
            try:
                for _ in range(600):
                    done = [await store.get(a.id) for a in (machine, human)]
                    if all(a is not None and a.status in TERMINAL for a in done):
                        break
                    await asyncio.sleep(0.05)
            finally:
                await controller.stop()
                await carrier.close()
    await engine.dispose()

    by_id = {a.id: a for a in done if a is not None}
    assert by_id[machine.id].status is CallStatus.COMPLETED
    assert by_id[machine.id].verdict == "machine"
    assert by_id[machine.id].end_type
    assert by_id[human.id].status is CallStatus.COMPLETED
    assert by_id[human.id].verdict == "human"
    assert by_id[human.id].answered_at is not None
    dials = [r for r in read_log(tmp_path / "sim.log") if r["op"] == "dial"]
    assert sorted(r["call_id"] for r in dials) == sorted([machine.id, human.id])
