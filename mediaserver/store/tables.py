"""Import this to register every table module on the one MetaData.

Modules written by other parts of the project are imported when present, so
one `create_all` builds the whole schema as they land.
"""

from __future__ import annotations

import importlib
import logging

from mediaserver.store import queue_tables
from mediaserver.store.metadata import metadata

log = logging.getLogger(__name__)

_OPTIONAL = (
    "mediaserver.store.campaign_tables",
    "mediaserver.store.outbox_tables",
)


def _import_optional() -> None:
    for name in _OPTIONAL:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            log.debug("table module %s is not installed", name)


_import_optional()

__all__ = ["metadata", "queue_tables"]
