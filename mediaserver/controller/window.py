"""Calling windows in the recipient's local time, correct across DST changes.

All math goes through `zoneinfo`: a window opening is the local wall time
`start` on an allowed day, turned into UTC with that day's offset, so the
opening moves by an hour in UTC when the clocks change, as it should. A
start that falls in a spring-forward gap opens when the gap ends; one that
falls in a fall-back overlap opens at its first occurrence. `end` may be
"24:00", and a start later than the end spans midnight (the days name the
day the window opens). An attempt outside the window is deferred to the
next opening, never dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from zoneinfo import ZoneInfo

import msgspec

from mediaserver.controller.campaign import WEEKDAYS
from mediaserver.controller.campaign import CallingWindow as WindowSpec
from mediaserver.controller.numbers import contact_timezones
from mediaserver.errors import ValidationError

_DAY_S = 86_400
_MAX_ZONE_ROUNDS = 32


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds of the local day: open from `start_s` to `end_s` (excluded)."""

    start_s: int
    end_s: int  # up to 86400; below start_s means the window spans midnight
    days: frozenset[int]  # Monday is 0

    @classmethod
    def from_spec(cls, spec: WindowSpec) -> Window:
        """From the campaign's validated `calling_window` block."""
        return cls(
            start_s=_seconds(spec.start),
            end_s=_seconds(spec.end),
            days=frozenset(WEEKDAYS.index(d) for d in spec.days),
        )


def _seconds(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def is_open(window: Window, now: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether `now` (aware) lies inside the window in `zone`."""
    local = now.astimezone(zone)
    second = local.hour * 3600 + local.minute * 60 + local.second
    day = local.weekday()
    if window.start_s < window.end_s:
        return day in window.days and window.start_s <= second < window.end_s
    if day in window.days and second >= window.start_s:
        return True
    return (day - 1) % 7 in window.days and second < window.end_s


def next_opening(window: Window, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """`now` if the window is open, else the next opening, in UTC."""
    if is_open(window, now, zone):
        return now.astimezone(dt.UTC)
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + dt.timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opening = _local_to_utc(day, window.start_s, zone)
        if opening > now:
            return opening
    raise ValueError("calling window has no allowed days")


def next_opening_all(
    window: Window, now: dt.datetime, zones: Sequence[ZoneInfo]
) -> dt.datetime:
    """The first moment at or after `now` when the window is open in every zone.

    A number whose region spans several zones is called only when it is
    within hours everywhere it might ring. Zones whose windows never overlap
    fall back to the first zone.
    """
    if not zones:
        return now.astimezone(dt.UTC)
    at = now
    for _ in range(_MAX_ZONE_ROUNDS):
        later = max(next_opening(window, at, z) for z in zones)
        if all(is_open(window, later, z) for z in zones):
            return later
        at = later if later > at else at + dt.timedelta(minutes=1)
    return next_opening(window, now, zones[0])


def _local_to_utc(day: dt.date, second: int, zone: ZoneInfo) -> dt.datetime:
    """The first UTC instant whose wall time in `zone` reaches `day` + `second`."""
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=second)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first

    # The wall time falls in a gap: find where the clock jumps past it.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    high = first
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zones_for(number: str, override: str | None) -> tuple[ZoneInfo, ...]:
    """The contact's own zone if set, else every zone the number may ring in.

    A number phonenumbers cannot place gets no zones: its window is then
    not applied (docs/call-status.md says so).
    """
    return zones_by_name(contact_timezones(number, override))


def zones_by_name(names: Sequence[str]) -> tuple[ZoneInfo, ...]:
    return tuple(_zone(name) for name in names)


def applied_zone_names(number: str, override: str | None) -> tuple[str, ...]:
    """The zones the window holds in: a bad override falls back to the number's."""
    try:
        return contact_timezones(number, override)
    except ValidationError:
        return contact_timezones(number, None)


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where an attempt goes on the queue once its calling window is applied."""

    scheduled_for: dt.datetime  # the requested time, or the window's next opening
    zone: str | None  # the zone applied, when exactly one (else None)
    deferred: bool  # the requested time was outside the window


def place(window: Window, requested: dt.datetime, names: Sequence[str]) -> Placement:
    """`requested`, moved to the next opening if the window is closed then.

    `names` are the zones from `applied_zone_names`. Called when an attempt
    is queued, so the dispatcher does not claim and defer calls that cannot
    go yet; it still checks again at dispatch.
    """
    opening = next_opening_all(window, requested, zones_by_name(names))
    return Placement(
        scheduled_for=max(requested, opening),
        zone=names[0] if len(names) == 1 else None,
        deferred=opening > requested,
    )
