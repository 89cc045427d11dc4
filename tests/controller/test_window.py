"""Calling windows in local time, across daylight-saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mediaserver.controller.campaign import CallingWindow
from mediaserver.controller.window import (
    Window,
    applied_zone_names,
    is_open,
    next_opening,
    next_opening_all,
    place,
    zones_for,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
NINE_TO_EIGHT = Window.from_spec(CallingWindow(start="09:00", end="20:00"))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_inside_is_now_and_end_is_excluded() -> None:
    now = utc(2026, 12, 7, 15, 0)  # 10:00 EST
    assert next_opening(NINE_TO_EIGHT, now, NY) == now
    assert is_open(NINE_TO_EIGHT, utc(2026, 12, 8, 0, 59), NY)  # 19:59 EST
    assert not is_open(NINE_TO_EIGHT, utc(2026, 12, 8, 1, 0), NY)  # 20:00 EST


def test_after_hours_defers_to_next_morning() -> None:
    late = utc(2026, 12, 8, 2, 0)  # 21:00 EST Monday
    assert next_opening(NINE_TO_EIGHT, late, NY) == utc(2026, 12, 8, 14, 0)


def test_days_skip_the_weekend() -> None:
    weekdays = Window.from_spec(
        CallingWindow(
            start="09:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"]
        )
    )
    friday_evening = utc(2026, 12, 11, 23, 0)  # 18:00 EST Friday
    assert next_opening(weekdays, friday_evening, NY) == utc(2026, 12, 14, 14, 0)


def test_spring_forward_new_york_opens_an_hour_earlier_in_utc() -> None:
    # Clocks go 02:00 EST -> 03:00 EDT on Sunday 8 March 2026.
    saturday_night = utc(2026, 3, 8, 2, 0)  # Sat 21:00 EST
    assert next_opening(NINE_TO_EIGHT, saturday_night, NY) == utc(2026, 3, 8, 13, 0)
    friday_night = utc(2026, 3, 7, 2, 0)  # Fri 21:00 EST
    assert next_opening(NINE_TO_EIGHT, friday_night, NY) == utc(2026, 3, 7, 14, 0)


def test_start_inside_the_spring_gap_opens_when_the_gap_ends() -> None:
    window = Window.from_spec(CallingWindow(start="02:30", end="05:00"))
    before = utc(2026, 3, 8, 5, 0)  # 00:00 EST
    opening = next_opening(window, before, NY)
    assert opening == utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the first wall time past 02:30
    assert is_open(window, opening, NY)


def test_fall_back_new_york_and_the_repeated_hour() -> None:
    # Clocks go 02:00 EDT -> 01:00 EST on Sunday 1 November 2026.
    assert next_opening(NINE_TO_EIGHT, utc(2026, 11, 1, 5, 0), NY) == utc(
        2026, 11, 1, 14, 0
    )
    early = Window.from_spec(CallingWindow(start="01:30", end="03:00"))
    first = next_opening(early, utc(2026, 11, 1, 4, 0), NY)  # 00:00 EDT
    assert first == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)
    # The window stays open through the repeated hour: 01:30 EST is 06:30 UTC.
    assert is_open(early, utc(2026, 11, 1, 6, 30), NY)
    assert not is_open(early, utc(2026, 11, 1, 8, 0), NY)  # 03:00 EST


def test_london_spring_and_autumn() -> None:
    # BST starts 29 March 2026 (01:00 GMT -> 02:00 BST), ends 25 October 2026.
    assert next_opening(NINE_TO_EIGHT, utc(2026, 3, 28, 21, 0), LONDON) == utc(
        2026, 3, 29, 8, 0
    )
    assert next_opening(NINE_TO_EIGHT, utc(2026, 10, 24, 20, 0), LONDON) == utc(
        2026, 10, 25, 9, 0
    )
    # On the autumn day the window closes at 20:00 GMT, not 19:00 UTC.
    assert is_open(NINE_TO_EIGHT, utc(2026, 10, 25, 19, 30), LONDON)


def test_overnight_and_until_midnight_windows() -> None:
    overnight = Window.from_spec(
        CallingWindow(start="22:00", end="02:00", days=["mon"])
    )
    assert is_open(overnight, utc(2026, 12, 7, 23, 0), LONDON)  # Mon 23:00
    assert is_open(overnight, utc(2026, 12, 8, 1, 0), LONDON)  # Tue 01:00, from Monday
    assert not is_open(overnight, utc(2026, 12, 9, 1, 0), LONDON)  # Wed 01:00
    late = Window.from_spec(CallingWindow(start="18:00", end="24:00"))
    assert is_open(late, utc(2026, 12, 7, 23, 59), LONDON)


def test_a_number_spanning_zones_waits_until_open_everywhere() -> None:
    zones = (NY, ZoneInfo("America/Los_Angeles"))
    morning_east = utc(2026, 12, 7, 14, 30)  # 09:30 New York, 06:30 Los Angeles
    assert next_opening_all(NINE_TO_EIGHT, morning_east, zones) == utc(
        2026, 12, 7, 17, 0
    )


@pytest.mark.parametrize(
    ("number", "override", "expected"),
    [
        ("+12125550123", None, "America/New_York"),
        ("+442071234567", None, "Europe/London"),
        ("+12125550123", "Europe/Paris", "Europe/Paris"),
    ],
)
def test_zone_from_number_or_override(
    number: str, override: str | None, expected: str
) -> None:
    assert [z.key for z in zones_for(number, override)] == [expected]


def test_place_moves_a_closed_window_call_to_the_opening() -> None:
    late = utc(2026, 12, 8, 2, 0)  # 21:00 EST Monday
    placed = place(NINE_TO_EIGHT, late, applied_zone_names("+12125550123", None))
    assert placed.scheduled_for == utc(2026, 12, 8, 14, 0)
    assert placed.zone == "America/New_York"
    assert placed.deferred

    open_now = utc(2026, 12, 7, 15, 0)  # 10:00 EST
    kept = place(NINE_TO_EIGHT, open_now, applied_zone_names("+12125550123", None))
    assert (kept.scheduled_for, kept.deferred) == (open_now, False)


def test_applied_zones_prefer_the_override_and_survive_a_bad_one() -> None:
    assert applied_zone_names("+12125550123", "Europe/London") == ("Europe/London",)
    assert applied_zone_names("+12125550123", "Mars/Olympus") == ("America/New_York",)
    uk = applied_zone_names("+447911123122", None)
    assert len(uk) > 1  # several zones: no single zone is stored
    placed = place(NINE_TO_EIGHT, utc(2026, 12, 7, 22, 0), uk)  # 22:00 London
    assert placed.zone is None
    assert placed.scheduled_for == utc(2026, 12, 8, 9, 0)
