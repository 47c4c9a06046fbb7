"""The metadata store: the ``MetadataStore`` interface, plain records, and its SQL
implementation. Knows nothing of artifacts' bytes or of execution."""

from __future__ import annotations

from gristmill.store.base import MetadataStore
from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    Entity,
    LineageGraph,
    MetadataRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunRecord,
    Status,
    StepRunRecord,
    StepStart,
)

__all__ = [
    "ArtifactVersionRecord",
    "CacheHit",
    "Entity",
    "LineageGraph",
    "MetadataRecord",
    "MetadataStore",
    "NewArtifactVersion",
    "PipelineRecord",
    "RunRecord",
    "Status",
    "StepRunRecord",
    "StepStart",
    "open_store",
]


def open_store(url: str) -> MetadataStore:
    """The metadata store at a SQLAlchemy URL (server URLs come with the server issue)."""
    if url.startswith(("http://", "https://")):
        from gristmill.errors import ConfigError

        raise ConfigError(
            f"store URL {url} is a server URL, but this gristmill has no REST client yet; "
            "use a SQLAlchemy URL such as sqlite:///.gristmill/metadata.db"
        )
    from gristmill.store.sql import SQLStore

    return SQLStore(url)
