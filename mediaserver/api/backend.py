"""What the HTTP routes need from the control plane, as one protocol.

Routes speak only to an `ApiBackend`; `mediaserver.api.control` implements
it over the campaign repository and the call queue. Unknown ids come back
as `None` (the route answers 404); bad input raises `ValidationError`
(422).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from litestar.params import SkipValidation

from mediaserver.api.schemas import (
    CallCreated,
    CallView,
    CampaignSummary,
    Canceled,
    Health,
    ImportReport,
    LaunchCall,
)
from mediaserver.controller.campaign import Campaign


class ApiBackend(Protocol):
    async def health(self) -> Health: ...

    async def create_campaign(self, body: Mapping[str, Any]) -> Campaign:
        """Validate and store version 1; returns the campaign as stored."""
        ...

    async def update_campaign(
        self,
        campaign_id: str,
        body: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> Campaign | None:
        """Store the next version; None when the campaign does not exist.

        With `expected_version`, only if that is still the latest (else 409).
        """
        ...

    async def read_campaign(
        self, campaign_id: str, version: int | None = None
    ) -> Campaign | None: ...

    async def list_campaigns(
        self, limit: int, offset: int
    ) -> list[CampaignSummary]: ...

    async def launch_call(self, request: LaunchCall) -> CallCreated | None:
        """Queue the first attempt; None when the campaign does not exist."""
        ...

    async def import_csv(
        self, campaign_id: str, chunks: AsyncIterator[bytes]
    ) -> ImportReport | None:
        """Queue one call per good row; None when the campaign does not exist."""
        ...

    async def list_calls(
        self, campaign_id: str | None, status: str | None, limit: int, offset: int
    ) -> list[CallView]: ...

    async def read_call(self, call_id: str) -> CallView | None:
        """The attempt with its status history."""
        ...

    async def cancel_call(self, call_id: str) -> Canceled | None: ...

    async def cancel_campaign(self, campaign_id: str) -> Canceled | None:
        """Cancel every attempt of the campaign still queued."""
        ...


# How routes ask for the backend: injected, and not re-validated per request.
Backend = SkipValidation[ApiBackend]
