"""E.164 normalisation across regions, spreadsheet damage, time zones."""

from __future__ import annotations

import pytest

from mediaserver.controller.numbers import (
    NumberError,
    contact_timezones,
    is_country_prefix,
    is_e164,
    normalise_number,
    number_timezones,
)
from mediaserver.errors import ValidationError


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(212) 555-0143", "US", "+12125550143"),
        ("212.555.0143", "US", "+12125550143"),
        ("1 212 555 0143", "US", "+12125550143"),
        ("+1 212-555-0143", "GB", "+12125550143"),  # a + ignores the region
        ("07400 123456", "GB", "+447400123456"),
        ("0044 7400 123456", "GB", "+447400123456"),  # international prefix 00
        ("7400 123456", "GB", "+447400123456"),  # leading 0 lost by a spreadsheet
        ("9212 3456", "OM", "+96892123456"),
        ("+968 9212 3456", "", "+96892123456"),
        ("01512 3456789", "DE", "+4915123456789"),
        ("06 12 34 56 78", "fr", "+33612345678"),  # region in any case
        ("0412 345 678", "AU", "+61412345678"),
        ("'+44 7400 123456", "US", "+447400123456"),  # Excel's text apostrophe
        ("  +12125550143  ", "", "+12125550143"),
    ],
)
def test_normalises_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalise_number(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("4.47400123456E+11", "GB", "scientific notation"),
        ("4,47400123456E+11", "GB", "scientific notation"),
        ("447400123456.0", "GB", "'.0'"),
        ("12125550143.00", "US", "'.0'"),
        ("447400123456", "US", "leading +"),  # a lost + named as such
        ("1-800-FLOWERS", "US", "other than digits"),
        ("+1 212 555 0143 ext 2", "US", "other than digits"),
        ("", "US", "empty"),
        ("   ", "US", "empty"),
        ("2125550143", "", "no country code"),
        ("+1212", "US", "too short"),
        ("+999123456789", "", "unknown country code"),
        ("+1 200 555 0143", "US", "not a valid phone number"),  # no area code 200
    ],
)
def test_rejects_with_a_reason(raw: str, region: str, reason: str) -> None:
    with pytest.raises(NumberError) as caught:
        normalise_number(raw, region)
    assert reason in str(caught.value)


def test_is_e164_wants_canonical_and_valid() -> None:
    assert is_e164("+12125550143")
    assert not is_e164("+1 212 555 0143")
    assert not is_e164("12125550143")
    assert not is_e164("+12005550143")


def test_country_prefixes() -> None:
    assert is_country_prefix("+1")
    assert is_country_prefix("+1212")
    assert is_country_prefix("+968")
    assert is_country_prefix("+44")
    assert not is_country_prefix("+9")  # no country code is just 9
    assert not is_country_prefix("+99")


def test_time_zones_follow_the_area_code() -> None:
    assert number_timezones("+12125550143") == ("America/New_York",)
    assert number_timezones("+14155550143") == ("America/Los_Angeles",)
    assert number_timezones("+96892123456") == ("Asia/Muscat",)


def test_override_beats_the_number_and_must_be_a_zone() -> None:
    assert contact_timezones("+12125550143", None) == ("America/New_York",)
    assert contact_timezones("+12125550143", "Europe/Paris") == ("Europe/Paris",)
    with pytest.raises(ValidationError) as caught:
        contact_timezones("+12125550143", "Mars/Olympus")
    assert "timezone" in caught.value.errors


def test_text_formula_wrapper_is_unwrapped() -> None:
    assert normalise_number('="+447400123456"', "US") == "+447400123456"
    assert normalise_number('="07400 123456"', "GB") == "+447400123456"
