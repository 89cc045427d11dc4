"""Identifier types, so that a call id is never passed where a campaign id goes."""

from __future__ import annotations

import uuid
from typing import NewType

CallId = NewType("CallId", str)  # one call attempt (the seed's call_queue_id)
CampaignId = NewType("CampaignId", str)
ContactId = NewType("ContactId", str)  # a recipient across its attempts
ConversationId = NewType("ConversationId", str)
CallingNumberId = NewType("CallingNumberId", str)
StreamId = NewType("StreamId", str)  # a carrier media stream (streamSid, stream_id)


def new_id() -> str:
    """A random UUID4 as text."""
    return str(uuid.uuid4())
