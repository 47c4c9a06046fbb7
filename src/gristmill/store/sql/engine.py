"""The engine every SQL capability shares: creating it (SQLite pragmas, pools), schema creation
and migration, write transactions with retries, the prepared-statement fast path, and the one
place where SQLAlchemy's errors become ``StoreError``. It knows no table but the schema's
version; the capability modules hold the queries."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from gristmill.errors import StoreError
from gristmill.store import schema as s
from gristmill.store.base import safe_url

T = TypeVar("T")

_WRITE = "gristmill_write"
_RETRIES = 8

# One per SQLite database URL, shared by every store object of the process that opens it.
_sqlite_writers: dict[str, threading.RLock] = {}


def loads(value: str | None, default: Any) -> Any:
    """A JSON column's value, or ``default`` when it is empty."""
    return json.loads(value) if value else default


class SQLEngine:
    """The connection to one database, shared by the capability mixins of ``SQLStore``. The
    schema is created or migrated on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time, and a thread that finds the write lock taken sleeps
        # in SQLite's busy handler (1, 2, 5 ... 25 ms steps): when 20 parallel steps finished
        # together, the last waited ~30 ms. Threads of one process queue here instead and are
        # woken at once; other processes still wait through busy_timeout.
        self._sqlite_writer = (
            _sqlite_writers.setdefault(url, threading.RLock()) if self.dialect == "sqlite" else None
        )
        try:
            self._ensure_schema()
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _reading(self, doing: str) -> Iterator[Connection]:
        """A connection for reads; a database failure becomes a StoreError saying ``doing``."""
        try:
            with self._connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._failure(exc, doing) from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._sqlite_writer or nullcontext(), self._connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def _connect(self) -> Connection:
        """A pooled connection; StoreError saying where and what to check when the database
        cannot be reached (a busy SQLite is left to the caller's retries)."""
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            if _is_transient(exc):
                raise
            raise self._unreachable(exc) from exc

    def _retrying(
        self, work: Callable[[Connection], T], doing: str, *, retry_conflicts: bool = True
    ) -> T:
        """``work`` in a write transaction, retried while a concurrent writer wins races; a
        database failure becomes a StoreError saying ``doing``."""
        try:
            return self._attempts(work, retry_conflicts=retry_conflicts)
        except SQLAlchemyError as exc:
            raise self._failure(exc, doing) from exc

    def _attempts(self, work: Callable[[Connection], T], *, retry_conflicts: bool = True) -> T:
        """Run a write transaction again when a concurrent writer won a race (unique key or
        serialization conflicts on PostgreSQL, a busy SQLite past its timeout). Raises
        SQLAlchemy's errors: callers wrap them (``_retrying``)."""
        for attempt in range(_RETRIES):
            try:
                with self._write() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as exc:
                transient = _is_transient(exc) and (
                    retry_conflicts or not isinstance(exc, IntegrityError)
                )
                if attempt == _RETRIES - 1 or not transient:
                    raise
                time.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")

    def _failure(self, exc: SQLAlchemyError, doing: str) -> StoreError:
        """The StoreError for a database error: where, what was being done, and the fix."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return self._unreachable(exc)
        return StoreError(
            f"the metadata store at {safe_url(self.url)} failed {doing}: {_reason(exc, self.url)}"
        )

    def _unreachable(self, exc: DBAPIError) -> StoreError:
        check = (
            "check the path"
            if self.dialect == "sqlite"
            else "check the server is running and the URL"
        )
        return StoreError(
            f"cannot reach the metadata store at {safe_url(self.url)}: {_reason(exc, self.url)}; "
            f"{check} (GRISTMILL_STORE_URL / `gristmill store set`)"
        )

    def _insert_missing(self, conn: Connection, table: Table, row: dict[str, Any]) -> None:
        """Insert a row keyed by a derived id unless it is already there."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(table).on_conflict_do_nothing(), row)
            return
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            conn.execute(postgresql_insert(table).on_conflict_do_nothing(), row)
            return
        if conn.execute(select(table.c.id).where(table.c.id == row["id"])).first() is None:
            conn.execute(insert(table), row)

    # -- schema -------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        try:
            current = self._schema_revision()
            if current == s.HEAD_REVISION:
                return
            with self._write() as conn:
                _lock_for_migration(conn)
                current = _read_revision(conn)
                if current is None:
                    self._create_schema(conn)
                    return
                if current == s.HEAD_REVISION:
                    return
            self._migrate(current)
        except SQLAlchemyError as exc:
            raise self._failure(exc, "opening it (reading or upgrading its schema)") from exc

    def _schema_revision(self) -> str | None:
        with self._connect() as conn:
            return _read_revision(conn)

    def _create_schema(self, conn: Connection) -> None:
        existing = set(inspect(conn).get_table_names())
        if existing & set(s.metadata.tables):
            raise StoreError(
                f"the database at {safe_url(self.url)} has gristmill tables but no "
                "schema version; point gristmill at an empty database or its own one"
            )
        s.metadata.create_all(conn)
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS alembic_version "
                "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
            )
        )
        conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": s.HEAD_REVISION})

    def _migrate(self, current: str) -> None:
        from gristmill.store.migrations import known_revisions, upgrade

        if current not in known_revisions():
            raise StoreError(
                f"the metadata store at {safe_url(self.url)} has schema revision '{current}', "
                f"which this gristmill does not know (its newest is '{s.HEAD_REVISION}'): "
                "upgrade gristmill (pip install -U gristmill)"
            )
        with self._connect() as conn:
            upgrade(conn)
            conn.commit()


# -- engine ---------------------------------------------------------------------------------


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot open the metadata store at {safe_url(url)}: cannot create its "
                    f"folder ({exc}); check the path in GRISTMILL_STORE_URL or --store"
                ) from exc
        try:
            engine = create_engine(
                url,
                connect_args={"timeout": 60, "isolation_level": None, "check_same_thread": False},
                pool_size=8,
                max_overflow=64,
                # Connection.close() already rolls back what is open; a second rollback on every
                # return to the pool is a wasted round trip per transaction.
                pool_reset_on_return=None,
            )
        except Exception as exc:  # a malformed URL: one line, not a traceback
            raise StoreError(
                f"cannot use the metadata store URL {safe_url(url)}: {_reason(exc, url)}. Use "
                "sqlite:///relative/path.db or sqlite:////absolute/path.db"
            ) from exc
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=32)
    except Exception as exc:
        raise StoreError(
            f"cannot use the metadata store URL {safe_url(url)}: {_reason(exc, url)}. Use a "
            "SQLAlchemy URL such as sqlite:///path/metadata.db or postgresql+psycopg://user@host/db"
        ) from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (each an fsync) every 4,000 pages rather than SQLite's 1,000: fewer stalls
        # on the write path, while the WAL stays small enough (16 MB) not to slow readers down.
        cursor.execute("PRAGMA wal_autocheckpoint=4000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None), so we say BEGIN
    # ourselves: IMMEDIATE for writes, so the write lock is taken (or waited for) up front.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _lock_for_migration(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(724101)"))


def _read_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _is_transient(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(
        word in message for word in ("locked", "busy", "deadlock", "serializ", "could not obtain")
    )


def _reason(exc: BaseException, url: str) -> str:
    """The driver's own message on one line, without the URL's password should it quote it."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = " ".join(str(cause).split()) or type(cause).__name__
    password = _password(url)
    return message.replace(password, "***") if password else message


def _password(url: str) -> str | None:
    found = re.match(r"[^:/]+://[^:/@]*:([^@]*)@", url)
    return found.group(1) if found and found.group(1) else None


# -- the fast path ----------------------------------------------------------------------------


class Prepared:
    """A statement SQLAlchemy compiles once per dialect (and per set of inserted columns),
    executed on the DBAPI cursor of an SQLAlchemy connection inside its transaction. The hot
    path runs a handful of these per step, and SQLAlchemy's per-statement machinery costs
    several times what SQLite itself does; everything else uses SQLAlchemy as usual."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build  # built on first use: a run uses only some of these
        self._statement: Any = None
        self._compiled: dict[tuple[str, tuple[str, ...]], Any] = {}

    def compiled(self, dialect: Any, keys: tuple[str, ...]) -> Any:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            if self._statement is None:
                self._statement = self._build()
            is_insert = getattr(self._statement, "is_insert", False)
            found = self._statement.compile(
                dialect=dialect, column_keys=list(keys) if is_insert else None
            )
            self._compiled[(dialect.name, keys)] = found
        return found


class Row(dict[str, Any]):
    """A fetched row, by column name as a key or an attribute."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Result:
    """The rows a prepared statement returned, fetched in full before its cursor closed."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def all(self) -> list[Row]:
        return self.rows

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def scalar_one(self) -> Any:
        if len(self.rows) != 1:
            raise StoreError(f"expected one row, the database returned {len(self.rows)}")
        return next(iter(self.rows[0].values()))


def execute(conn: Connection, prepared: Prepared, values: Any) -> Result:
    """Execute a prepared statement with one parameter dict, or many (executemany), and fetch
    what it returns; the cursor is closed before this returns, whatever happened."""
    many = isinstance(values, list)
    rows = values if many else [values]
    compiled = prepared.compiled(conn.dialect, tuple(rows[0]) if rows else ())
    names = compiled.positiontup if compiled.positional else None

    def bind(row: dict[str, Any]) -> Any:
        params = compiled.construct_params(row)
        return tuple(params[n] for n in names) if names is not None else params

    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(compiled.string, [bind(r) for r in rows])
        else:
            cursor.execute(compiled.string, bind(values))
        if cursor.description is None:
            return Result([])
        columns = [d[0] for d in cursor.description]
        return Result([Row(zip(columns, found, strict=True)) for found in cursor.fetchall()])
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            compiled.string, values, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    finally:
        cursor.close()
