"""API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`.

Health, the OpenAPI document and the carrier callbacks stay open: callbacks
are authenticated by the carrier's own signature, checked by their routes.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.types import ASGIApp

logger = logging.getLogger(__name__)

# Paths that never need a key (regular expressions, matched from the start).
OPEN_PATHS = ["^/health", "^/schema", "^/docs", "^/callbacks/"]

SECURITY_SCHEMES = Components(
    security_schemes={
        "bearer": SecurityScheme(type="http", scheme="bearer"),
        "apiKey": SecurityScheme(
            type="apiKey", name="X-API-Key", security_scheme_in="header"
        ),
    }
)
SECURITY: list[SecurityRequirement] = [{"bearer": []}, {"apiKey": []}]


class ApiKeyPrincipal:
    """Who made the request: the index of the matching configured key."""

    __slots__ = ("key_index",)

    def __init__(self, key_index: int) -> None:
        self.key_index = key_index

    def __repr__(self) -> str:
        return f"ApiKeyPrincipal(key #{self.key_index})"


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The key a request carries, from either header; empty when none."""
    authorization = connection.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return connection.headers.get("x-api-key", "").strip()


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Rejects requests without a configured key with 401."""

    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        super().__init__(app, exclude=OPEN_PATHS)
        self._keys = [key.encode() for key in keys if key]

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        key = presented_key(connection)
        if not key:
            raise NotAuthorizedException(
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key`",
                headers={"WWW-Authenticate": "Bearer"},
            )

        # Compare against every key so timing does not reveal which one is near.
        candidate = key.encode()
        matched = -1
        for index, known in enumerate(self._keys):
            if hmac.compare_digest(candidate, known):
                matched = index
        if matched < 0:
            logger.info("rejected a request with an unknown API key")
            raise NotAuthorizedException(
                "invalid API key", headers={"WWW-Authenticate": "Bearer"}
            )
        return AuthenticationResult(user=ApiKeyPrincipal(matched), auth=None)


def api_key_middleware(keys: Iterable[str]) -> DefineMiddleware:
    return DefineMiddleware(ApiKeyMiddleware, keys=list(keys))
