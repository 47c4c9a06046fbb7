"""The metadata store: its capability interfaces (``RunWriter``, ``RunReader``,
``LineageReader``, ``StackCatalog``, ``SecretVault``, ``MetricWriter``, ``MetricReader``;
``MetadataStore`` is all of them), plain
records, derived ids, and ``open_store``. Knows nothing of artifacts' bytes or of execution;
SQLAlchemy is imported only when a SQL store is opened."""

from __future__ import annotations

from gristmill.errors import NotFoundError
from gristmill.store.base import (
    LineageReader,
    MetadataStore,
    MetricReader,
    MetricWriter,
    ModelRegistry,
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
    ExperimentRecord,
    LineageGraph,
    MetadataRecord,
    MetricPoint,
    ModelArtifactLink,
    ModelRecord,
    ModelVersionRecord,
    NewArtifactVersion,
    PipelineRecord,
    RunDeletion,
    RunRecord,
    SecretRecord,
    StackRecord,
    StageChange,
    Status,
    StepRunRecord,
    StepStart,
)

__all__ = [
    "ArtifactVersionRecord",
    "CacheHit",
    "ComponentRecord",
    "Entity",
    "ExperimentRecord",
    "LineageGraph",
    "LineageReader",
    "MetadataRecord",
    "MetadataStore",
    "MetricPoint",
    "MetricReader",
    "MetricWriter",
    "ModelArtifactLink",
    "ModelRecord",
    "ModelRegistry",
    "ModelVersionRecord",
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
    "StageChange",
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
