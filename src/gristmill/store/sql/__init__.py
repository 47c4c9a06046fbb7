"""The metadata store on any SQLAlchemy database: SQLite (WAL, the embedded default),
PostgreSQL, MySQL. ``SQLStore`` is one mixin per capability over a shared engine
(``engine.py``); no SQLAlchemy error leaves it unwrapped. Writes are short transactions; on
SQLite they take the write lock up front (BEGIN IMMEDIATE) so concurrent writers wait their
turn instead of failing with 'database is locked'."""

from __future__ import annotations

from gristmill.store.base import MetadataStore, safe_url
from gristmill.store.sql.deletion import SQLRunDeleter
from gristmill.store.sql.lineage import SQLLineageReader
from gristmill.store.sql.metrics import SQLMetricStore
from gristmill.store.sql.models import SQLModelRegistry
from gristmill.store.sql.runs_read import SQLRunReader
from gristmill.store.sql.runs_write import SQLRunWriter
from gristmill.store.sql.secrets import SQLSecretVault
from gristmill.store.sql.stacks import SQLStackCatalog
from gristmill.store.sql.users import SQLUserDirectory

__all__ = ["SQLStore", "safe_url"]


class SQLStore(
    SQLRunWriter,
    SQLRunReader,
    SQLRunDeleter,
    SQLLineageReader,
    SQLStackCatalog,
    SQLSecretVault,
    SQLMetricStore,
    SQLModelRegistry,
    SQLUserDirectory,
    MetadataStore,
):
    """A metadata store on a SQLAlchemy URL; the schema is created or migrated on open."""
