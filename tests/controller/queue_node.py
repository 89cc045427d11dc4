"""A controller node for the crash and multi-node tests.

`python -m tests.controller.queue_node --db URL --campaign FILE --log FILE`
runs the Controller with the simulated carrier (no media) against the
queue in URL until no attempt is left unfinished, then exits 0. Tests kill
it with SIGKILL at any moment and start it again.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import msgspec

from mediaserver.carriers.simulated import SimulatedCarrier
from mediaserver.controller.campaign import Campaign
from mediaserver.controller.service import Controller, StaticCampaigns
from mediaserver.controller.status import TERMINAL
from mediaserver.logs import configure
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore


async def run(args: argparse.Namespace, campaign: Campaign) -> int:
    engine = make_engine(args.db, schema=args.schema)
    await create_schema(engine, schema=args.schema)
    carrier = SimulatedCarrier(log_path=Path(args.log), speed=args.speed)
    controller = Controller(
        QueueStore(engine),
        StaticCampaigns([campaign]),
        {"simulated": carrier},
        media_urls={},
        token_secret=b"node-secret-0123456789abcdef0123",
        node_id=args.node,
        poll_s=0.05,
        lease_s=args.lease_s,
    )
    carrier.bind(controller, controller)

    await controller.start()
    try:
        while True:
            counts = await controller.store.count_by_status()
            if all(status in TERMINAL for status in counts):
                break
            await asyncio.sleep(0.05)
    finally:
        await controller.stop()
        await carrier.close()
        await engine.dispose()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--campaign", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--node", default="node-1")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--lease-s", type=float, default=60.0)
    args = parser.parse_args()
    configure("WARNING")
    campaign = msgspec.json.decode(Path(args.campaign).read_bytes(), type=Campaign)
    return asyncio.run(run(args, campaign))


if __name__ == "__main__":
    raise SystemExit(main())
