"""The one SQLAlchemy MetaData every table module registers its tables on.

Table modules: `campaign_tables` (campaigns and their versions),
`queue_tables` (call attempts and their status history), `outbox_tables`
(lifecycle events, conversations and analyses). Import
`mediaserver.store.tables` to have them all registered.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
