"""Time as the controller sees it: a callable clock, so tests can move it by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]  # returns an aware UTC datetime


def utc_now() -> dt.datetime:
    """The real clock."""
    return dt.datetime.now(dt.UTC)
