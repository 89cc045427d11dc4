"""The engine factory: a SQLite file by default, PostgreSQL for several nodes.

SQLite runs in WAL mode with a busy timeout, foreign keys on, and every
transaction opened with `BEGIN IMMEDIATE`, so two writers queue for the lock
instead of failing when a read turns into a write. PostgreSQL goes through
asyncpg; `schema` puts every table in one schema (tests use a fresh one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mediaserver.errors import ConfigError

DEFAULT_URL = "sqlite+aiosqlite:///var/callwright.sqlite3"
READ_ONLY = "callwright_read_only"  # execution option: SQLite opens a plain BEGIN
_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str) -> str:
    """Add the async driver to a plain `sqlite://` or `postgresql://` URL."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    if url.startswith(("postgresql:", "postgres:")):
        return "postgresql+asyncpg:" + url.split(":", 1)[1]
    if url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
        return url
    raise ConfigError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def make_engine(url: str = DEFAULT_URL, *, schema: str | None = None) -> AsyncEngine:
    """An async engine for `url`; the SQLite file's folder is created."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)

    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, connect_args=connect_args, pool_size=10)


def _sqlite_engine(url: str) -> AsyncEngine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below open transactions, not the driver.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


async def create_schema(engine: AsyncEngine, *, schema: str | None = None) -> None:
    """Create every registered table (and the PostgreSQL schema, if named)."""
    from mediaserver.store import tables

    async with engine.begin() as conn:
        if schema and is_postgres(engine):
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(tables.metadata.create_all)


async def drop_schema(engine: AsyncEngine, schema: str) -> None:
    """Drop a PostgreSQL schema and everything in it (tests clean up with it)."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
