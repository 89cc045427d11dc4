"""The Litestar application: routes, API-key auth, errors as JSON, OpenAPI.

`create_app` takes the control plane as an `ApiBackend` and, optionally,
carrier callback handlers to mount under /callbacks (they verify carrier
signatures themselves and need no API key).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from mediaserver import __version__
from mediaserver.api.auth import SECURITY_SCHEMES, api_key_middleware
from mediaserver.api.backend import ApiBackend, Backend
from mediaserver.api.routes_calls import call_router
from mediaserver.api.routes_campaigns import campaign_router
from mediaserver.api.schemas import ErrorBody, Health, ValidationErrorBody
from mediaserver.controller.campaign import Campaign
from mediaserver.errors import StoreError, ValidationError
from mediaserver.store.campaigns import CampaignConflict

logger = logging.getLogger(__name__)

OPENAPI_PATH = "/schema"
CAMPAIGN_SCHEMA: dict[str, Any] = msgspec.json.schema(Campaign)


@get("/health", summary="Liveness and database reachability", tags=["service"])
async def health(backend: Backend) -> Health:
    return await backend.health()


@get(f"{OPENAPI_PATH}/campaign.json", include_in_schema=False)
async def campaign_schema() -> dict[str, Any]:
    """The campaign body's JSON Schema, generated from the Struct."""
    return CAMPAIGN_SCHEMA


@get("/docs", include_in_schema=False)
async def docs() -> Redirect:
    return Redirect(path=f"{OPENAPI_PATH}/swagger")


def _error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        ErrorBody(error=message, status_code=status),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _on_validation(_: Request[Any, Any, Any], exc: ValidationError) -> Response[Any]:
    return Response(
        ValidationErrorBody(errors=exc.errors),
        status_code=422,
        media_type=MediaType.JSON,
    )


def _field_of(item: dict[str, Any]) -> str:
    """A dotted field path from Litestar's report (`$.a.b`, or an unknown key)."""
    key = str(item.get("key") or "body").removeprefix("$.")
    message = str(item.get("message", ""))
    for marker in ("unknown field `", "missing required field `"):
        if marker in message:
            name = message.split(marker, 1)[1].split("`", 1)[0]
            key = name if key in ("data", "body") else f"{key}.{name}"
    return "body" if key == "data" else key  # `data` is Litestar's, not the user's


def _reason_of(message: str) -> str:
    """msgspec's `Expected `object`, got `array`` as the user would say it."""
    if message.startswith("Expected `object`, got `"):
        got = message.removeprefix("Expected `object`, got `").rstrip("`")
        got = {"str": "string", "int": "number", "float": "number"}.get(got, got)
        return f"JSON object expected, got {got}"
    return message


def _on_bad_request(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """Bodies and parameters that do not fit their schema: 422, fields named."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = {
        _field_of(item): _reason_of(str(item.get("message", "invalid")))
        for item in extra
        if isinstance(item, dict)
    }
    if not errors:
        return _error(400, str(exc.detail))
    return Response(
        ValidationErrorBody(errors=errors), status_code=422, media_type=MediaType.JSON
    )


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return _error(exc.status_code, str(exc.detail), exc.headers)


def _on_conflict(_: Request[Any, Any, Any], exc: CampaignConflict) -> Response[Any]:
    return _error(409, str(exc))


def _on_store(request: Request[Any, Any, Any], exc: StoreError) -> Response[Any]:
    logger.error("store failed on %s %s: %s", request.method, request.url.path, exc)
    return _error(503, "the store is unavailable; retry later")


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, "internal error")


def create_app(
    backend: Backend,
    api_keys: Iterable[str],
    *,
    routes: Sequence[ControllerRouterHandler] = (),
    callbacks: Sequence[HTTPRouteHandler | ControllerRouterHandler] = (),
    debug: bool = False,
) -> Litestar:
    """The HTTP API over `backend`, open only to requests bearing one of `api_keys`.

    `routes` are more API routers (behind the key, like the built-in ones);
    `callbacks` are carrier callback handlers under /callbacks, which check
    the carrier's signature instead.
    """
    keys = [key for key in api_keys if key]
    if not keys:
        logger.warning("no API keys configured: every API route will answer 401")

    async def provide_backend() -> ApiBackend:
        return backend

    return Litestar(
        route_handlers=[
            health,
            docs,
            campaign_schema,
            campaign_router,
            call_router,
            *routes,
            *callbacks,
        ],
        dependencies={"backend": Provide(provide_backend, use_cache=True)},
        middleware=[api_key_middleware(keys)],
        exception_handlers={
            ValidationError: _on_validation,
            ValidationException: _on_bad_request,
            HTTPException: _on_http,
            CampaignConflict: _on_conflict,
            StoreError: _on_store,
            Exception: _on_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="Callwright",
            version=__version__,
            description="Outbound campaigns, calls and their status.",
            path=OPENAPI_PATH,
            components=[SECURITY_SCHEMES],
            render_plugins=[SwaggerRenderPlugin()],
        ),
        logging_config=None,  # the service's own logging set-up stays
        debug=debug,
    )
