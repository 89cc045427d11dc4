"""`python -m mediaserver.store.probe URL`: exit 0 if PostgreSQL answers there."""

from __future__ import annotations

import asyncio
import sys


async def _probe(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/test"
    return 0 if asyncio.run(_probe(url)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
