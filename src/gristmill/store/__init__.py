"""The metadata store: its capability interfaces (``RunWriter``, ``RunReader``,
``LineageReader``, ``StackCatalog``, ``SecretVault``; ``MetadataStore`` is all of them), plain
records, derived ids, and ``open_store``. Knows nothing of artifacts' bytes or of execution;
SQLAlchemy is imported only when a SQL store is opened."""

from __future__ import annotations

from gristmill.errors import NotFoundError
from gristmill.store.base import (
    LineageReader,
    MetadataStore,
    RunDeleter,
    RunReader,
    RunWriter,
    SecretVault,
    StackCatalog,
    redact_url_passwords,
    safe_url,
)
from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    Entity,
    LineageGraph,
    MetadataRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunDeletion,
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
    "LineageReader",
    "MetadataRecord",
    "MetadataStore",
    "NewArtifactVersion",
    "NotFoundError",
    "PipelineRecord",
    "RunDeleter",
    "RunDeletion",
    "RunReader",
    "RunRecord",
    "RunWriter",
    "SecretRecord",
    "SecretVault",
    "StackCatalog",
    "StackRecord",
    "Status",
    "StepRunRecord",
    "StepStart",
    "open_store",
    "redact_url_passwords",
    "safe_url",
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
