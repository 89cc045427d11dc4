"""Launch requests: one contact to call under a campaign, checked and normalised.

The API (one call) and the CSV import (many) both end here, so a contact
is judged the same way whichever door it came through. A `LaunchRequest`
is what the queue enqueues: the destination in E.164, the caller number
routed for it (every attempt of the contact keeps it), typed variables and
metadata with defaults filled, and when and in which time zone to call.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping

import msgspec

from mediaserver.controller.campaign import CallingNumber, Campaign
from mediaserver.controller.numbers import (
    NumberError,
    is_timezone,
    normalise_with_zones,
)
from mediaserver.controller.routing import CallerIdRouter
from mediaserver.controller.variables import JsonValue, resolve_values
from mediaserver.errors import ValidationError


class LaunchRequest(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    number: str  # the destination, E.164
    variables: dict[str, JsonValue] = {}
    metadata: dict[str, JsonValue] = {}
    scheduled_for: dt.datetime | None = None  # aware UTC; None: as soon as allowed
    timezone: str | None = None  # the contact's override (IANA name), if given
    row: int | None = None  # spreadsheet row number, for CSV imports
    campaign_version: int = 0
    calling_number: CallingNumber | None = None  # routed caller ID
    timezones: tuple[str, ...] = ()  # where the calling window applies


def prepare_launch(
    campaign: Campaign,
    raw_number: str,
    variables: Mapping[str, object] | None = None,
    metadata: Mapping[str, object] | None = None,
    scheduled_for: dt.datetime | str | None = None,
    timezone: str | None = None,
    *,
    row: int | None = None,
    router: CallerIdRouter | None = None,
) -> LaunchRequest:
    """Normalise and check one launch.

    Raises:
        ValidationError: naming every bad field (`number`, `variables.<name>`,
            `metadata.<name>`, `scheduled_for`, `timezone`).
    """
    errors: dict[str, str] = {}
    number, number_zones = _number(raw_number, campaign.default_region, errors)
    values, value_errors = resolve_values(
        campaign.variables, variables, field="variables"
    )
    meta, meta_errors = resolve_values(campaign.metadata, metadata, field="metadata")
    errors.update(value_errors)
    errors.update(meta_errors)

    zone = timezone.strip() if timezone and timezone.strip() else None
    if zone is not None and not is_timezone(zone):
        errors["timezone"] = f"unknown time zone {zone!r} (use an IANA name)"
        zone = None
    zones = (zone,) if zone else number_zones
    when = _scheduled_for(scheduled_for, zones, errors)
    if errors:
        raise ValidationError(errors)

    assert number is not None  # no errors means the number parsed
    calling = (router or CallerIdRouter(campaign.caller_id)).route(number)
    return LaunchRequest(
        campaign_id=campaign.id,
        campaign_version=campaign.version,
        number=number,
        calling_number=calling,
        variables=values,
        metadata=meta,
        scheduled_for=when,
        timezone=zone,
        timezones=zones,
        row=row,
    )


def _number(
    raw: str, region: str, errors: dict[str, str]
) -> tuple[str | None, tuple[str, ...]]:
    try:
        return normalise_with_zones(raw, region)
    except NumberError as exc:
        errors["number"] = str(exc)
        return None, ()


def _scheduled_for(
    value: dt.datetime | str | None,
    zones: tuple[str, ...],
    errors: dict[str, str],
) -> dt.datetime | None:
    """An aware UTC time; a time without offset is read in the contact's zone."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            errors["scheduled_for"] = (
                "not an ISO 8601 time, e.g. 2026-12-05T10:00+01:00"
            )
            return None

    if value.tzinfo is None:
        # Several zones are fine when they agree at that time (London and
        # Jersey do); otherwise the local time means different instants.
        naive = value
        offsets = {
            naive.replace(tzinfo=zoneinfo.ZoneInfo(z)).utcoffset() for z in zones
        }
        if len(offsets) != 1:
            errors["scheduled_for"] = (
                "has no UTC offset and the contact's time zone is not known; "
                "add an offset or a timezone"
            )
            return None
        value = naive.replace(tzinfo=zoneinfo.ZoneInfo(zones[0]))
    return value.astimezone(dt.UTC)
