"""CPU of concurrent WebRTC calls: `python -m tests.webrtc.load [calls]`.

Runs N calls of the human hello (3.8 s) at once through the signaling
server, the session, AMD and the reference agent, answered with Opus and
then with PCMU only. Both peers and the agent run in this process, so the
CPU figure covers all of them. Prints timings; asserts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from mediaserver.media_amd import AmdEngine
from tests.webrtc.conftest import make_rig, settings
from tests.webrtc.peer import TestPeer
from tests.webrtc.test_calls import HUMAN, recording


async def run(engine: AmdEngine, codecs: list[str], n: int) -> None:
    async for rig in make_rig(engine, settings(codecs=codecs)):
        pcm = recording(HUMAN)
        plans = [rig.plan() for _ in range(n)]
        peers = [TestPeer(pcm) for _ in range(n)]
        cpu0 = time.process_time()
        offer_ms = []
        for peer, (_, token) in zip(peers, plans, strict=True):
            t0 = time.monotonic()
            response = await peer.offer(rig.http, rig.url, token)
            assert response.status_code == 200, response.text
            offer_ms.append((time.monotonic() - t0) * 1000)
        await asyncio.gather(*(p.track.finished.wait() for p in peers))
        for peer in peers:
            await peer.hang_up()
        outcomes = [await rig.outcomes.wait_outcome(p.call_id) for p, _ in plans]
        cpu = time.process_time() - cpu0
        for plan, _ in plans:
            await rig.transport.wait_closed(plan.call_id)

        call_s = n * len(pcm) / 8000
        labels = sorted({o.verdict.label.value for o in outcomes if o.verdict})
        offer_ms.sort()
        print(
            f"{'/'.join(codecs) or 'opus'} x{n}: CPU {cpu:.2f} s for {call_s:.0f} "
            f"call-s = {cpu / call_s * 100:.1f} % of a core per call; "
            f"offer->answer median {offer_ms[n // 2]:.0f} ms, "
            f"max {offer_ms[-1]:.0f} ms; verdicts {labels}"
        )


async def main(n: int) -> None:
    engine = AmdEngine()
    engine.warm_up()
    for codecs in ([], ["audio/PCMU"]):
        await run(engine, codecs, n)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
