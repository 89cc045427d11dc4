"""Phone numbers: E.164 normalisation and the time zones a number lies in.

Numbers arrive typed by people and mangled by spreadsheets. We strip only
what cannot change the digits (spaces, dashes, dots, parentheses, a leading
apostrophe, an `="..."` text formula) and refuse, with a reason, anything a
spreadsheet may have rounded or padded: scientific notation
(`4.47700900123E+11`) and float formatting (`...123.0`). A damaged number
is never guessed at, so it is never dialled wrong.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as pn_timezone

from mediaserver.errors import ValidationError

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

_TEXT_FORMULA = re.compile(r'^="(.*)"$')
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_FLOAT_TAIL = re.compile(r"^\+?[\d\s]+[.,]0+$")
_SEPARATORS = str.maketrans("", "", " \t\u00a0\u2009\u202f-.()/")
_UNKNOWN_ZONE = "Etc/Unknown"

_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
}


class NumberError(ValueError):
    """A number cannot be dialled; the message says why, without the digits."""


def normalise_number(raw: str, region: str = "") -> str:
    """Return `raw` as E.164 (`+<country><number>`), or raise `NumberError`.

    `region` (ISO 3166 alpha-2, e.g. "US") is how numbers written without a
    `+` are read; with no region only international numbers are accepted.
    """
    return normalise_with_zones(raw, region, zones=False)[0]


def normalise_with_zones(
    raw: str, region: str = "", *, zones: bool = True
) -> tuple[str, tuple[str, ...]]:
    """`normalise_number` plus the number's time zones, parsing only once."""
    text = raw.strip()
    formula = _TEXT_FORMULA.match(text)  # ="0044..." keeps a cell as text
    if formula is not None:
        text = formula.group(1)
    text = text.lstrip("'\u2018\u2019").strip()
    if not text:
        raise NumberError("empty")

    # Spreadsheet damage: refuse, since the true digits are gone.
    if _SCIENTIFIC.match(text):
        raise NumberError(
            "in scientific notation (a spreadsheet rounded it); "
            "format the column as text and export again"
        )
    if _FLOAT_TAIL.match(text):
        raise NumberError(
            "ends in '.0' (a spreadsheet stored it as a number); "
            "format the column as text and export again"
        )

    compact = text.translate(_SEPARATORS)
    if not re.fullmatch(r"\+?\d+", compact):
        raise NumberError("contains characters other than digits")
    parsed = _parse(compact, region.upper())
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, _zones(parsed) if zones else ()


def _parse(compact: str, region: str) -> phonenumbers.PhoneNumber:
    """Parse digits (with an optional `+`) and insist on a valid number."""
    if not compact.startswith("+") and not region:
        raise NumberError("has no country code (start it with +)")
    try:
        parsed = phonenumbers.parse(compact, region or None)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(_parse_reason(exc)) from exc

    if phonenumbers.is_valid_number(parsed):
        return parsed

    # A lost leading `+` is the commonest spreadsheet damage: name it.
    if not compact.startswith("+") and _valid_international(compact):
        raise NumberError(
            f"not a valid {region} number; it would be valid with a leading +, "
            "which the spreadsheet may have dropped: add the + to dial abroad"
        )
    why = phonenumbers.is_possible_number_with_reason(parsed)
    detail = _POSSIBLE_REASONS.get(why, "not an assigned number range")
    raise NumberError(f"not a valid phone number ({detail})")


def _valid_international(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
    except phonenumbers.NumberParseException:
        return False


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "not a phone number")


def is_e164(number: str) -> bool:
    """True when `number` is already in canonical E.164 and valid."""
    if not E164.match(number):
        return False
    try:
        return normalise_number(number) == number
    except NumberError:
        return False


def is_region(region: str) -> bool:
    """True for a region phonenumbers knows (ISO 3166 alpha-2, any case)."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def is_country_prefix(prefix: str) -> bool:
    """True when `prefix` (`+` then digits) begins with a country calling code."""
    digits = prefix.removeprefix("+")
    return any(int(digits[:n]) in _country_codes() for n in (1, 2, 3) if digits[:n])


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[int]:
    return frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@lru_cache(maxsize=4096)
def number_timezones(e164: str) -> tuple[str, ...]:
    """IANA zones the number may be in; empty when phonenumbers cannot tell.

    A US number gives its area code's zone; a country spanning several
    zones gives them all, and the calling window must then hold in each.
    """
    return _zones(phonenumbers.parse(e164, None))


def _zones(parsed: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    zones = pn_timezone.time_zones_for_number(parsed)
    return tuple(z for z in zones if z != _UNKNOWN_ZONE)


def is_timezone(name: str) -> bool:
    """True for an IANA zone name the tz database knows."""
    if not name or name != name.strip():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def contact_timezones(e164: str, override: str | None) -> tuple[str, ...]:
    """The zones the calling window applies in: the contact's override, if set."""
    if override:
        if not is_timezone(override):
            raise ValidationError({"timezone": f"unknown time zone {override!r}"})
        return (override,)
    return number_timezones(e164)
