"""The metadata store: its capability interfaces (``RunWriter``, ``RunReader``,
``LineageReader``, ``StackCatalog``, ``SecretVault``, ``MetricWriter``, ``MetricReader``, ``UserDirectory``;
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
    UserDirectory,
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
    "UserDirectory",
    "open_store",
    "redact_url_passwords",
    "safe_url",
]


def open_store(url: str) -> MetadataStore:
    """The metadata store at a SQLAlchemy URL, or at a gristmill server's URL
    (``http(s)://``: the REST store, with the token from GRISTMILL_API_TOKEN or
    ``gristmill connect``)."""
    if url.startswith(("http://", "https://")):
        from gristmill.store.rest import open_rest_store

        return open_rest_store(url)
    from gristmill.store.sql import SQLStore

    return SQLStore(url)
