"""The call queue: one row per call attempt, and each attempt's status history.

A retry is a new row with a new id for the same `contact_id`; the pair
(contact_id, attempt_number) is unique, so a retry is never created twice.
Dispatch bookkeeping (see docs/call-status.md): `lease_owner`/`lease_until`
say which node claimed the attempt and until when; `dial_intent_at` is
written and committed before the carrier request, `provider_call_id` after.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from mediaserver.store.metadata import metadata


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=dt.UTC)


_ID = sa.String(64)
_WHEN = UtcDateTime()

call_attempts = sa.Table(
    "call_attempts",
    metadata,
    sa.Column("id", _ID, primary_key=True),  # the seed's call_queue_id
    sa.Column("contact_id", _ID, nullable=False),
    sa.Column("attempt_number", sa.Integer, nullable=False),
    sa.Column("retry_of", _ID, nullable=True),  # the previous attempt's id
    sa.Column("campaign_id", _ID, nullable=False),
    sa.Column("campaign_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("created_at", _WHEN, nullable=False),
    sa.Column("enqueued_at", _WHEN, nullable=False),
    sa.Column("scheduled_for", _WHEN, nullable=False),
    sa.Column("processing_started_at", _WHEN, nullable=True),
    sa.Column("completed_at", _WHEN, nullable=True),
    sa.Column("answered_at", _WHEN, nullable=True),
    sa.Column("calling_number_id", _ID, nullable=False),
    sa.Column("calling_number", sa.String(20), nullable=False),
    sa.Column("calling_number_provider", sa.String(32), nullable=False),
    sa.Column("provider_call_id", sa.String(128), nullable=True),
    sa.Column("recipient_number", sa.String(20), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=True),  # per-contact override
    sa.Column("dynamic_variables", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("source_row", sa.Integer, nullable=True),  # CSV row, if any
    sa.Column("initiation_error", sa.Text, nullable=True),
    sa.Column("conversation_id", _ID, nullable=True),
    sa.Column("outcome", sa.String(24), nullable=True),  # the carrier's ending
    sa.Column("verdict", sa.String(24), nullable=True),  # AMD label
    sa.Column("end_type", sa.String(32), nullable=True),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", _WHEN, nullable=True),
    sa.Column("dial_intent_at", _WHEN, nullable=True),
    # The zone the calling window was applied in when queued: the contact's
    # override, else the number's when phonenumbers gives exactly one.
    sa.Column("zone", sa.String(64), nullable=True),
    sa.UniqueConstraint("contact_id", "attempt_number"),
    sa.Index("ix_call_attempts_due", "status", "campaign_id", "scheduled_for"),
    sa.Index("ix_call_attempts_provider_call", "provider_call_id"),
    sa.Index("ix_call_attempts_contact", "contact_id"),
    sa.Index("ix_call_attempts_listing", "campaign_id", "created_at"),
)

call_status_history = sa.Table(
    "call_status_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "attempt_id",
        _ID,
        sa.ForeignKey("call_attempts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("at", _WHEN, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)
