"""The HTTP API's request and response bodies (msgspec; they make the OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every non-validation error: a sentence and the HTTP status."""

    error: str
    status_code: int


class ValidationErrorBody(msgspec.Struct, kw_only=True):
    """422: each bad field (dotted path, CSV column) and why."""

    errors: dict[str, str]


class Health(msgspec.Struct, kw_only=True):
    status: str  # "ok" or "degraded"
    version: str
    database: str  # "ok" or the error class name
    media: str  # "listening", "off"


class LaunchCall(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /calls: one call of a campaign to one number."""

    campaign_id: str
    number: str  # E.164, or national in the campaign's default region
    variables: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    scheduled_for: dt.datetime | None = None  # aware; none: as soon as allowed
    timezone: str | None = None  # IANA zone overriding the number's own
    contact_id: str | None = None  # yours, to group attempts; none: generated


class CallCreated(msgspec.Struct, kw_only=True):
    id: str  # the call_queue_id of the first attempt
    contact_id: str
    status: str
    scheduled_for: dt.datetime | None = None  # after the calling window
    zone: str | None = None  # the IANA zone the calling window was applied in


class StatusChange(msgspec.Struct, kw_only=True):
    status: str
    at: dt.datetime
    old_status: str | None = None
    detail: str = ""


class CallView(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One call attempt, in the seed's call-queue vocabulary."""

    id: str
    contact_id: str
    attempt_number: int
    campaign_id: str
    campaign_version: int
    status: str
    recipient_number: str
    calling_number: str | None = None
    calling_number_id: str | None = None
    calling_number_provider: str | None = None
    provider_call_id: str | None = None
    created_at: dt.datetime | None = None
    enqueued_at: dt.datetime | None = None
    processing_started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    scheduled_for: dt.datetime | None = None
    timezone: str | None = None  # the zone asked for at launch, if any
    zone: str | None = None  # the zone the calling window was applied in
    dynamic_variables: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    initiation_error: str | None = None
    conversation_id: str | None = None
    outcome: str | None = None
    verdict: str | None = None
    end_type: str | None = None
    history: list[StatusChange] | None = None  # only when one call is read


class CallPage(msgspec.Struct, kw_only=True):
    items: list[CallView]
    limit: int
    offset: int
    next_offset: int | None  # none: this was the last page


class RejectedRow(msgspec.Struct, kw_only=True):
    row: int  # as a spreadsheet shows it: the header is row 1
    reason: str
    errors: dict[str, str] = {}  # field -> why, when the row parsed


class ImportReport(msgspec.Struct, kw_only=True):
    """What a CSV upload did with each row; every accepted row is queued."""

    campaign_id: str
    rows: int  # data rows seen, blank ones included
    accepted: int
    rejected: list[RejectedRow]
    blank_rows: int = 0
    ignored_columns: list[str] = []  # columns the campaign does not declare
    delimiter: str = ","
    encoding: str = ""


class Canceled(msgspec.Struct, kw_only=True):
    canceled: int  # how many attempts this request moved to canceled
    ids: list[str] = []


class CampaignSummary(msgspec.Struct, kw_only=True):
    id: str
    name: str
    version: int
    provider: str
    updated_at: dt.datetime | None = None


class CampaignPage(msgspec.Struct, kw_only=True):
    items: list[CampaignSummary]
    limit: int
    offset: int
    next_offset: int | None
