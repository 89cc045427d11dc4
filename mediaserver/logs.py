"""Logging helpers: masking of personal data and rate-limited warnings."""

from __future__ import annotations

import logging
import re
import time

_DIGITS = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def mask_number(number: str | None) -> str:
    """Keep the country-code-ish head and the last two digits: +4477•••••12."""
    if not number:
        return ""
    digits = [c for c in number if c.isdigit()]
    if len(digits) <= 4:
        return "•" * len(digits)
    head = "+" if number.strip().startswith("+") else ""
    return head + "".join(digits[:3]) + "•" * (len(digits) - 5) + "".join(digits[-2:])


def mask_text(text: str) -> str:
    """Mask anything that looks like a phone number inside free text."""
    return _DIGITS.sub(lambda m: mask_number(m.group(0)), text)


def mask_transcript(text: str) -> str:
    """Transcripts are personal data: log only their length."""
    return f"<transcript {len(text)} chars>"


class RateLimitedLog:
    """Logs a repeated condition at most once per `interval` seconds per key.

    Suppressed occurrences are counted and reported with the next line.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object, **extra: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            msg += " (%d similar suppressed)"
            args = (*args, skipped)
        self._logger.warning(msg, *args, extra=extra or None)


class CallContext(logging.Filter):
    """Show the call id a line carries in `extra`, so calls can be told apart."""

    def filter(self, record: logging.LogRecord) -> bool:
        call_id = getattr(record, "call_id", None)
        record.call = f" [call {str(call_id)[:13]}]" if call_id else ""
        return True


def configure(level: str = "INFO") -> None:
    """Plain stdlib logging for the command-line entry points."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s:%(call)s %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(CallContext())
