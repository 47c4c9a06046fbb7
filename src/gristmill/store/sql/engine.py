"""The engine every SQL capability shares: creating it (SQLite pragmas, pools), schema creation
and migration, write transactions with retries, and the one place where SQLAlchemy's errors
become ``StoreError``. It knows no table but the schema's version; the capability modules hold
the queries.

On a SQLite file the statements of ``prepared.py`` run on connections of the ``sqlite3`` module
(``_SQLiteFile``) and SQLAlchemy's engine is only made when another statement is: a run opens
the store and records itself without importing SQLAlchemy."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from gristmill.errors import StoreError
from gristmill.store.base import safe_url
from gristmill.store.migrations import HEAD_REVISION
from gristmill.store.sql._lazy import sa
from gristmill.store.sql.prepared import DriverConnection

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
        self._engine: sa.Engine | None = None
        self._engine_lock = threading.Lock()
        path = _sqlite_path(url)
        # SQLAlchemy's engine, when made later, opens the same file whatever the folder then.
        self._engine_url = f"sqlite:///{path}" if path is not None else url
        self._sqlite_file = _SQLiteFile(path) if path is not None else None
        if url.startswith("sqlite"):
            _make_folder(url)
            self.dialect = "sqlite"
        else:
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
            self.close()
            raise

    @property
    def engine(self) -> sa.Engine:
        """SQLAlchemy's engine, made on first use."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = _create_engine(self._engine_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._sqlite_file is not None:
            self._sqlite_file.close()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _reading(self, doing: str, *, prepared: bool = False) -> Iterator[Any]:
        """A connection for reads; a database failure becomes a StoreError saying ``doing``.
        ``prepared``: only prepared statements are executed (``execute``), so a SQLite file's
        own connection does."""
        try:
            if prepared and self._sqlite_file is not None:
                with self._sqlite_file.transaction(write=False) as conn:
                    yield conn
            else:
                with self._connect() as conn:
                    yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._failure(exc, doing) from exc

    def _write(self, *, prepared: bool = False) -> AbstractContextManager[Any]:
        if prepared and self._sqlite_file is not None:
            return self._sqlite_file.transaction(write=True, lock=self._sqlite_writer)
        return self._sqlalchemy_write()

    @contextmanager
    def _sqlalchemy_write(self) -> Iterator[sa.Connection]:
        with self._sqlite_writer or nullcontext(), self._connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def _connect(self) -> sa.Connection:
        """A pooled connection; StoreError saying where and what to check when the database
        cannot be reached (a busy SQLite is left to the caller's retries)."""
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            if _is_transient(exc):
                raise
            raise self._unreachable(exc) from exc

    def _retrying(
        self,
        work: Callable[[Any], T],
        doing: str,
        *,
        retry_conflicts: bool = True,
        prepared: bool = False,
    ) -> T:
        """``work`` in a write transaction, retried while a concurrent writer wins races; a
        database failure becomes a StoreError saying ``doing``. ``prepared``: ``work`` executes
        only prepared statements."""
        try:
            return self._attempts(work, retry_conflicts=retry_conflicts, prepared=prepared)
        except sa.exc.SQLAlchemyError as exc:
            raise self._failure(exc, doing) from exc

    def _attempts(
        self, work: Callable[[Any], T], *, retry_conflicts: bool = True, prepared: bool = False
    ) -> T:
        """Run a write transaction again when a concurrent writer won a race (unique key or
        serialization conflicts on PostgreSQL, a busy SQLite past its timeout). Raises
        SQLAlchemy's errors: callers wrap them (``_retrying``)."""
        for attempt in range(_RETRIES):
            try:
                with self._write(prepared=prepared) as conn:
                    return work(conn)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                transient = _is_transient(exc) and (
                    retry_conflicts or not isinstance(exc, sa.exc.IntegrityError)
                )
                if attempt == _RETRIES - 1 or not transient:
                    raise
                time.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")

    def _failure(self, exc: BaseException, doing: str) -> StoreError:
        """The StoreError for a database error: where, what was being done, and the fix."""
        if getattr(exc, "connection_invalidated", False):
            return self._unreachable(exc)
        return StoreError(
            f"the metadata store at {safe_url(self.url)} failed {doing}: {_reason(exc, self.url)}"
        )

    def _unreachable(self, exc: BaseException) -> StoreError:
        check = (
            "check the path"
            if self.dialect == "sqlite"
            else "check the server is running and the URL"
        )
        return StoreError(
            f"cannot reach the metadata store at {safe_url(self.url)}: {_reason(exc, self.url)}; "
            f"{check} (GRISTMILL_STORE_URL / `gristmill store set`)"
        )

    # -- schema -------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._sqlite_file is not None and self._sqlite_file.revision() == HEAD_REVISION:
            return  # the usual case, settled without SQLAlchemy
        try:
            current = self._schema_revision()
            if current == HEAD_REVISION:
                return
            with self._sqlalchemy_write() as conn:
                _lock_for_migration(conn)
                current = _read_revision(conn)
                if current is None:
                    self._create_schema(conn)
                    return
                if current == HEAD_REVISION:
                    return
            self._migrate(current)
        except sa.exc.SQLAlchemyError as exc:
            raise self._failure(exc, "opening it (reading or upgrading its schema)") from exc

    def _schema_revision(self) -> str | None:
        with self._connect() as conn:
            return _read_revision(conn)

    def _create_schema(self, conn: sa.Connection) -> None:
        from gristmill.store import schema

        existing = set(sa.inspect(conn).get_table_names())
        if existing & set(schema.metadata.tables):
            raise StoreError(
                f"the database at {safe_url(self.url)} has gristmill tables but no "
                "schema version; point gristmill at an empty database or its own one"
            )
        schema.metadata.create_all(conn)
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS alembic_version "
                "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
            )
        )
        conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": HEAD_REVISION})

    def _migrate(self, current: str) -> None:
        from gristmill.store.migrations import known_revisions, upgrade

        if current not in known_revisions():
            raise StoreError(
                f"the metadata store at {safe_url(self.url)} has schema revision '{current}', "
                f"which this gristmill does not know (its newest is '{HEAD_REVISION}'): "
                "upgrade gristmill (pip install -U gristmill)"
            )
        with self._connect() as conn:
            upgrade(conn)
            conn.commit()


# -- SQLite's own connections -----------------------------------------------------------------


def _named_file(url: str) -> str | None:
    """The file a SQLite URL names (its options left out), or None for an in-memory database."""
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    return None if not path or path == ":memory:" or path.startswith("file:") else path


def _sqlite_path(url: str) -> str | None:
    """The file a plain SQLite URL names, absolute, or None for anything else (other databases,
    in-memory ones, URLs with options): those go through SQLAlchemy alone."""
    if re.match(r"sqlite(?:\+pysqlite)?:///", url) is None or "?" in url:
        return None
    path = _named_file(url)
    return str(Path(path).absolute()) if path is not None else None


def _make_folder(url: str) -> None:
    """The folder of the file a SQLite URL names, made if missing."""
    path = _named_file(url)
    if path is None:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot open the metadata store at {safe_url(url)}: cannot create its "
            f"folder ({exc}); check the path in GRISTMILL_STORE_URL or --store"
        ) from exc


class _SQLiteFile:
    """Connections of the ``sqlite3`` module to one database file, set up as SQLAlchemy's are
    (``_sqlite_on_connect``), for the prepared statements; SQLite's own locking keeps them and
    SQLAlchemy's pool consistent with each other."""

    _KEEP = 8  # idle connections kept, as SQLAlchemy's pool_size

    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def revision(self) -> str | None:
        """The schema revision, or None when there is none yet (or it cannot be read here)."""
        try:
            raw = self._take()
        except sqlite3.Error:
            return None  # SQLAlchemy's path says why
        try:
            found = raw.execute("SELECT version_num FROM alembic_version").fetchone()
            return str(found[0]) if found else None
        except sqlite3.Error:  # no such table yet, or not a database: SQLAlchemy's path says
            return None
        finally:
            self._give_back(raw)

    @contextmanager
    def transaction(
        self, *, write: bool, lock: AbstractContextManager[Any] | None = None
    ) -> Iterator[DriverConnection]:
        """A transaction (for writes: holding SQLite's write lock from its start, as
        ``_sqlite_on_begin`` does) committed when the block ends and rolled back when it
        raises. The driver's errors are raised as SQLAlchemy's."""
        with lock or nullcontext():
            try:
                raw = self._take()
            except sqlite3.Error as exc:
                raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
            healthy = False
            try:
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield DriverConnection(raw)
                except BaseException:
                    if raw.in_transaction:  # SQLite ends it itself after some errors
                        raw.execute("ROLLBACK")
                    healthy = True
                    raise
                raw.execute("COMMIT")
                healthy = True
            except sqlite3.Error as exc:
                raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
            finally:
                if healthy:
                    self._give_back(raw)
                else:
                    raw.close()

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._pid != os.getpid():  # a forked child must not share its parent's
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        raw = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            _sqlite_on_connect(raw, None)
        except BaseException:
            raw.close()
            raise
        return raw

    def _give_back(self, raw: sqlite3.Connection) -> None:
        with self._lock:
            if len(self._idle) < self._KEEP and self._pid == os.getpid():
                self._idle.append(raw)
                return
        raw.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for raw in idle:
            raw.close()


# -- engine ---------------------------------------------------------------------------------


def _create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        try:
            engine = sa.create_engine(
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
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=32)
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


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None), so we say BEGIN
    # ourselves: IMMEDIATE for writes, so the write lock is taken (or waited for) up front.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _lock_for_migration(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(724101)"))


def _read_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _is_transient(exc: sa.exc.DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return isinstance(exc, sa.exc.IntegrityError) or any(
        word in message for word in ("locked", "busy", "deadlock", "serializ", "could not obtain")
    )


def _reason(exc: BaseException, url: str) -> str:
    """The driver's own message on one line, without the URL's password should it quote it."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    message = " ".join(str(cause).split()) or type(cause).__name__
    password = _password(url)
    return message.replace(password, "***") if password else message


def _password(url: str) -> str | None:
    found = re.match(r"[^:/]+://[^:/@]*:([^@]*)@", url)
    return found.group(1) if found and found.group(1) else None
