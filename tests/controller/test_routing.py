"""Caller-ID routing: longest E.164 prefix wins, else the default number."""

from __future__ import annotations

import pytest

from mediaserver.controller.campaign import (
    CallerIdOverride,
    CallerIdPolicy,
    CallingNumber,
)
from mediaserver.controller.routing import CallerIdRouter, route_caller_id

DEFAULT = CallingNumber(id="us-main", number="+12125550100", provider="twilio")
NANP = CallingNumber(id="nanp", number="+13125550100", provider="twilio")
NYC = CallingNumber(id="nyc", number="+12125550111", provider="twilio")
NYC_212_555 = CallingNumber(id="nyc-555", number="+12125550122", provider="telnyx")
OMAN = CallingNumber(id="oman", number="+96892123456", provider="telnyx")
UK = CallingNumber(id="uk", number="+447400123456", provider="twilio")


def _policy(*pairs: tuple[str, CallingNumber]) -> CallerIdPolicy:
    overrides = [CallerIdOverride(prefix=p, number=n) for p, n in pairs]
    return CallerIdPolicy(default=DEFAULT, overrides=overrides)


# Deliberately listed shortest-last and mixed, so order cannot decide.
POLICY = _policy(
    ("+1212", NYC),
    ("+968", OMAN),
    ("+1", NANP),
    ("+1212555", NYC_212_555),
    ("+44", UK),
)

CASES = [
    ("+96892123457", OMAN),  # country code
    ("+12125550143", NYC_212_555),  # longest: area code plus exchange
    ("+12124440143", NYC),  # area code beats country code
    ("+13105550143", NANP),  # only the country code matches
    ("+447911123456", UK),
    ("+4915123456789", DEFAULT),  # no override: the default
    ("+33612345678", DEFAULT),
]


@pytest.mark.parametrize(("destination", "expected"), CASES)
def test_longest_prefix_wins(destination: str, expected: CallingNumber) -> None:
    assert route_caller_id(POLICY, destination) == expected


@pytest.mark.parametrize(("destination", "expected"), CASES)
def test_router_agrees_with_the_function(
    destination: str, expected: CallingNumber
) -> None:
    assert CallerIdRouter(POLICY).route(destination) == expected


def test_no_overrides_always_gives_the_default() -> None:
    policy = CallerIdPolicy(default=DEFAULT)
    assert route_caller_id(policy, "+96892123457") == DEFAULT
    assert CallerIdRouter(policy).route("+96892123457") == DEFAULT


def test_prefix_is_matched_on_digits_not_on_a_substring() -> None:
    # "+968" appears inside this UK-style number but not at its start.
    policy = _policy(("+968", OMAN))
    assert route_caller_id(policy, "+449689123456") == DEFAULT


def test_order_of_overrides_does_not_matter() -> None:
    forward = _policy(("+1", NANP), ("+1212", NYC))
    backward = _policy(("+1212", NYC), ("+1", NANP))
    for policy in (forward, backward):
        assert route_caller_id(policy, "+12125550143") == NYC
        assert CallerIdRouter(policy).route("+12125550143") == NYC
        assert route_caller_id(policy, "+14155550143") == NANP


def test_many_prefixes_against_a_brute_force_oracle() -> None:
    prefixes = ["+1", "+12", "+121", "+1212", "+9", "+96", "+968", "+9689", "+44"]
    numbers = {p: CallingNumber(id=p, number=DEFAULT.number) for p in prefixes}
    policy = _policy(*numbers.items())
    router = CallerIdRouter(policy)
    for destination in ("+12125550143", "+12015550143", "+96892123457", "+4420"):
        matching = [p for p in prefixes if destination.startswith(p)]
        want = numbers[max(matching, key=len)] if matching else DEFAULT
        assert route_caller_id(policy, destination) == want
        assert router.route(destination) == want
