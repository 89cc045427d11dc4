"""Query parameters and documented error responses shared by the routers."""

from __future__ import annotations

from typing import Annotated

from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from mediaserver.api.schemas import ErrorBody, ValidationErrorBody

MAX_LIMIT = 500
# The stores keep offsets in a signed 64-bit INTEGER (SQLite, PostgreSQL):
# a larger one would overflow in the driver, so it is refused as input.
MAX_OFFSET = 2**63 - 1

Limit = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"page size, 1-{MAX_LIMIT}")
]
Offset = Annotated[
    int,
    QueryParameter(ge=0, le=MAX_OFFSET, description="items to skip, 0 to 2**63-1"),
]


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description)


def _invalid(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ValidationErrorBody, description=description)


# Every route behind the API key answers these; others add their own.
COMMON_ERRORS: dict[int, ResponseSpec] = {
    400: _error("malformed request (for example a JSON or TOML syntax error)"),
    401: _error("missing or unknown API key"),
    422: _invalid("invalid fields or parameters, each named with why"),
    503: _error("the store is unavailable; retry later"),
}
NOT_FOUND = {404: _error("no such id")}
CONFLICT = {409: _error("the campaign changed since the expected version")}
BODY_ERRORS: dict[int, ResponseSpec] = {
    413: _error("the body is too large"),
    415: _error("the body's content type is not accepted"),
}
