"""The metadata store: the ``MetadataStore`` interface, plain records, and its SQL
implementation. Knows nothing of artifacts' bytes or of execution."""

from __future__ import annotations

from gristmill.errors import NotFoundError
from gristmill.store.base import MetadataStore
from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    Entity,
    LineageGraph,
    MetadataRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunRecord,
    SecretRecord,
    StackRecord,
    Status,
    StepRunRecord,
    StepStart,
)

__all__ = [
    "ArtifactVersionRecord",
    "CacheHit",
    "ComponentRecord",
    "Entity",
    "LineageGraph",
    "MetadataRecord",
    "MetadataStore",
    "NewArtifactVersion",
    "NotFoundError",
    "PipelineRecord",
    "RunRecord",
    "SecretRecord",
    "StackRecord",
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
