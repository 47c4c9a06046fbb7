"""Numbering artifact versions: each artifact counts the numbers it has given, so numbers grow
per name, survive deletions (a deleted version's number is never given again), and concurrent
publishers of one name wait for each other on its row instead of racing for ``MAX + 1``.
Part of the per-step write path: one statement where the database can upsert."""

from __future__ import annotations

from typing import Any

from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.prepared import (
    DriverConnection,
    Prepared,
    StatementConnection,
    dialect_name,
    execute,
)


def _upsert(dialect_insert: Any) -> Any:
    """``INSERT`` the artifact with its first number, or add one to its counter; either way
    return the number claimed."""
    artifacts = s.artifacts
    statement = dialect_insert(artifacts).values(
        id=sa.bindparam("id"),
        name=sa.bindparam("name"),
        created_at=sa.bindparam("created_at"),
        last_version=1,
    )
    return statement.on_conflict_do_update(
        index_elements=[artifacts.c.id],
        set_={"last_version": artifacts.c.last_version + 1},
    ).returning(artifacts.c.last_version)


def _sqlite_upsert() -> Any:
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return _upsert(sqlite_insert)


def _postgresql_upsert() -> Any:
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return _upsert(postgresql_insert)


_CLAIM = {
    "sqlite": Prepared("artifacts.claim_version.sqlite", _sqlite_upsert, dialect="sqlite"),
    "postgresql": Prepared(
        "artifacts.claim_version.postgresql", _postgresql_upsert, dialect="postgresql"
    ),
}


def claim_version_number(conn: StatementConnection, artifact_id: str, name: str, now: float) -> int:
    """The next version number of artifact ``name`` (created with number 1 if new), claimed in
    the caller's transaction: the artifact's row stays locked until it commits."""
    values = {"id": artifact_id, "name": name, "created_at": now}
    claim = _CLAIM.get(dialect_name(conn))
    if claim is not None:
        return int(execute(conn, claim, values).scalar_one())
    # Databases without INSERT ... ON CONFLICT ... RETURNING (a connection of SQLAlchemy's
    # here): lock by updating, then read.
    assert not isinstance(conn, DriverConnection)
    artifacts = s.artifacts
    bumped = conn.execute(
        sa.update(artifacts)
        .where(artifacts.c.id == artifact_id)
        .values(last_version=artifacts.c.last_version + 1)
    ).rowcount
    if not bumped:
        conn.execute(sa.insert(artifacts), {**values, "last_version": 1})
        return 1
    return int(
        conn.execute(
            sa.select(artifacts.c.last_version).where(artifacts.c.id == artifact_id)
        ).scalar_one()
    )
