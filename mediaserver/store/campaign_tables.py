"""Tables for campaigns and their versions.

`campaigns` holds one row per campaign with its latest version number;
`campaign_versions` holds every saved version, whole and never changed,
so an attempt launched with version 3 can always be read back as it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mediaserver.store.metadata import metadata

# JSONB on PostgreSQL, JSON text on SQLite.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Archived campaigns launch nothing new; their versions stay readable.
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
)

campaign_versions = sa.Table(
    "campaign_versions",
    metadata,
    sa.Column(
        "campaign_id",
        sa.String(64),
        sa.ForeignKey("campaigns.id"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", Json, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
