"""Campaign routes: create, read (any version), update (a new version), list,
cancel, and the CSV upload that queues one call per row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from litestar import Request, Router, get, post, put
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, QueryParameter

from mediaserver.api.auth import SECURITY
from mediaserver.api.backend import Backend
from mediaserver.api.bodies import (
    CSV_TYPES,
    CampaignBodyOperation,
    CsvBodyOperation,
    campaign_from_request,
    content_type,
)
from mediaserver.api.params import (
    BODY_ERRORS,
    COMMON_ERRORS,
    CONFLICT,
    NOT_FOUND,
    Limit,
    Offset,
)
from mediaserver.api.schemas import CampaignPage, Canceled, ImportReport
from mediaserver.controller.campaign import Campaign

T = TypeVar("T")

# A campaign comes in as a plain JSON object or TOML document checked by
# `parse_campaign`, so a 422 names every bad field by its dotted path
# (Litestar's own decoding would stop at the first); its JSON Schema is at
# /schema/campaign.json. Responses are typed: the OpenAPI document
# describes the Campaign.
CampaignOut = Campaign

MAX_CSV_BYTES = 512 * 1024 * 1024  # large files stream; this only bounds abuse
CSV_CHUNK = 64 * 1024


def _found(value: T | None, what: str, key: str) -> T:
    if value is None:
        raise NotFoundException(f"no {what} {key!r}")
    return value


@post(
    "/",
    status_code=201,
    summary="Create a campaign (version 1), from JSON or TOML",
    operation_class=CampaignBodyOperation,
    responses={**COMMON_ERRORS, **BODY_ERRORS, **CONFLICT},
)
async def create_campaign(
    request: Request[Any, Any, Any], backend: Backend
) -> CampaignOut:
    return await backend.create_campaign(await campaign_from_request(request))


@get("/", summary="List campaigns, newest version of each", responses=COMMON_ERRORS)
async def list_campaigns(
    backend: Backend, limit: Limit = 50, offset: Offset = 0
) -> CampaignPage:
    items = await backend.list_campaigns(limit + 1, offset)
    more = len(items) > limit
    return CampaignPage(
        items=items[:limit],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@get(
    "/{campaign_id:str}",
    summary="Read a campaign, its latest or a given version",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def read_campaign(
    campaign_id: FromPath[str],
    backend: Backend,
    version: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> CampaignOut:
    found = await backend.read_campaign(campaign_id, version)
    label = campaign_id if version is None else f"{campaign_id} v{version}"
    return _found(found, "campaign", label)


@get(
    "/{campaign_id:str}/versions/{version:int}",
    summary="Read one version of a campaign",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def read_campaign_version(
    campaign_id: FromPath[str], version: FromPath[int], backend: Backend
) -> CampaignOut:
    found = await backend.read_campaign(campaign_id, version)
    return _found(found, "campaign", f"{campaign_id} v{version}")


@put(
    "/{campaign_id:str}",
    summary="Update a campaign: stores the next version (JSON or TOML)",
    operation_class=CampaignBodyOperation,
    responses={**COMMON_ERRORS, **BODY_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def update_campaign(
    campaign_id: FromPath[str],
    request: Request[Any, Any, Any],
    backend: Backend,
    expected_version: Annotated[
        int | None,
        QueryParameter(ge=1, description="409 unless this is still the latest version"),
    ] = None,
) -> CampaignOut:
    data = await campaign_from_request(request)
    updated = await backend.update_campaign(campaign_id, data, expected_version)
    return _found(updated, "campaign", campaign_id)


@post(
    "/{campaign_id:str}/cancel",
    status_code=200,
    summary="Cancel every queued call of a campaign",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def cancel_campaign(campaign_id: FromPath[str], backend: Backend) -> Canceled:
    return _found(await backend.cancel_campaign(campaign_id), "campaign", campaign_id)


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CSV_CHUNK):
        yield chunk


@post(
    "/{campaign_id:str}/calls/csv",
    status_code=200,
    request_max_body_size=MAX_CSV_BYTES,
    summary="Upload contacts as CSV (text/csv body or multipart field `file`)",
    description=(
        "One call is queued per good row; the report lists rejected rows with "
        "their line numbers and reasons. A text/csv body is read as a stream."
    ),
    operation_class=CsvBodyOperation,
    responses={**COMMON_ERRORS, **BODY_ERRORS, **NOT_FOUND},
)
async def upload_csv(
    campaign_id: FromPath[str], request: Request[Any, Any, Any], backend: Backend
) -> ImportReport:
    kind = content_type(request)
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ClientException("multipart upload needs a file field named `file`")
        report = await backend.import_csv(campaign_id, _upload_chunks(upload))
    elif kind in CSV_TYPES:
        report = await backend.import_csv(campaign_id, request.stream())
    else:
        raise ClientException(
            f"send text/csv or multipart/form-data, not {kind or 'nothing'}",
            status_code=415,
        )
    return _found(report, "campaign", campaign_id)


campaign_router = Router(
    path="/campaigns",
    route_handlers=[
        create_campaign,
        list_campaigns,
        read_campaign,
        read_campaign_version,
        update_campaign,
        cancel_campaign,
        upload_csv,
    ],
    security=SECURITY,
    tags=["campaigns"],
)
