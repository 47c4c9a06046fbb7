"""The statements a run executes, prepared once: the fast path of the SQL store.

A step costs a handful of statements, and SQLAlchemy's per-statement machinery costs several
times what SQLite itself does, so these run on the driver's cursor. On a SQLite file they run
on the ``sqlite3`` module's own connection (``DriverConnection``) with SQL compiled ahead of
time (``sqlite_statements.py``), so a run on the embedded store never imports SQLAlchemy (half
of a one-step pipeline's wall time). On any other database SQLAlchemy compiles each statement
once per dialect. Everything else in the store uses SQLAlchemy as usual.

``make sqlite-statements`` rewrites ``sqlite_statements.py`` after a statement
changed; a test fails while it is out of date."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from gristmill.errors import StoreError
from gristmill.store.sql._lazy import sa

_ALL: dict[str, Prepared] = {}


class Prepared:
    """A statement built on first use, known by a name unique in the store; ``dialect``: the one
    database it is written for, if it uses that database's own SQL. ``register=False``: not one
    of the store's (never compiled ahead of time)."""

    def __init__(
        self,
        name: str,
        build: Callable[[], Any],
        *,
        dialect: str | None = None,
        register: bool = True,
    ) -> None:
        if register and name in _ALL:
            raise ValueError(f"two prepared statements are named {name!r}")
        self.name = name
        self.dialect = dialect
        self._build = build  # built on first use: a run uses only some of these
        self._statement: Any = None
        self._compiled: dict[str, Any] = {}
        self._sqlite: tuple[str, dict[str, Any]] | None = None
        if register:
            _ALL[name] = self

    def statement(self) -> Any:
        if self._statement is None:
            self._statement = self._build()
        return self._statement

    def compiled(self, dialect: Any) -> Any:
        """SQLAlchemy's compiled form for ``dialect`` (a connection of SQLAlchemy's)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self.statement().compile(dialect=dialect)
        return found

    def sqlite(self) -> tuple[str, dict[str, Any]]:
        """The SQL for the ``sqlite3`` module (named parameters) and the values of the
        parameters the statement fixes itself; compiled ahead of time when it can be."""
        if self._sqlite is None:
            from gristmill.store.sql.sqlite_statements import STATEMENTS

            found = STATEMENTS.get(self.name) if _ALL.get(self.name) is self else None
            self._sqlite = found if found is not None else compile_for_sqlite(self.statement())
        return self._sqlite


def compile_for_sqlite(statement: Any) -> tuple[str, dict[str, Any]]:
    """SQLAlchemy's SQL for SQLite with named parameters, and the values of those it fixes."""
    from sqlalchemy.dialects import sqlite

    compiled = statement.compile(dialect=sqlite.dialect(paramstyle="named"))
    fixed = {
        name: value
        for name, value in compiled.construct_params(_check=False).items()
        if not compiled.binds[name].required
    }
    return compiled.string, fixed


def insert_of(table: Any, *columns: str) -> Any:
    """``INSERT`` of these columns of ``table``, each from the parameter of its name."""
    return sa.insert(table).values({c: sa.bindparam(c) for c in columns})


def one_of(column: Any, values: list[str]) -> Any:
    """``column IN (...)`` of fixed values, as parameters a prepared statement keeps."""
    return column.in_([sa.literal(v) for v in values])


class Row(dict[str, Any]):
    """A fetched row, by column name as a key or an attribute."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Result:
    """The rows a prepared statement returned, fetched in full before its cursor closed."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Row], rowcount: int = -1) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Row]:
        return self.rows

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return next(iter(self.rows[0].values())) if self.rows else None

    def scalar_one(self) -> Any:
        if len(self.rows) != 1:
            raise StoreError(f"expected one row, the database returned {len(self.rows)}")
        return next(iter(self.rows[0].values()))


class DriverConnection:
    """A ``sqlite3`` connection inside a transaction, for prepared statements only."""

    __slots__ = ("raw",)
    dialect_name = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw


# What a prepared statement runs on: the sqlite3 module's own connection, or SQLAlchemy's.
StatementConnection: TypeAlias = "DriverConnection | sa.Connection"


def dialect_name(conn: StatementConnection) -> str:
    return (
        DriverConnection.dialect_name if isinstance(conn, DriverConnection) else conn.dialect.name
    )


def execute(conn: StatementConnection, prepared: Prepared, values: Any) -> Result:
    """Execute a prepared statement with one parameter dict, or many (executemany), on a
    ``DriverConnection`` or a connection of SQLAlchemy's, and fetch what it returns; the cursor
    is closed before this returns, whatever happened. The driver's errors are raised as
    SQLAlchemy's, as every other statement's are."""
    if isinstance(conn, DriverConnection):
        return _on_sqlite(conn.raw, prepared, values)
    return _on_sqlalchemy(conn, prepared, values)


def _on_sqlite(raw: sqlite3.Connection, prepared: Prepared, values: Any) -> Result:
    sql, fixed = prepared.sqlite()
    cursor = raw.cursor()
    try:
        if isinstance(values, list):
            cursor.executemany(sql, [{**fixed, **v} for v in values] if fixed else values)
        else:
            cursor.execute(sql, {**fixed, **values} if fixed else values)
        return _fetched(cursor)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc
    finally:
        cursor.close()


def _on_sqlalchemy(conn: sa.Connection, prepared: Prepared, values: Any) -> Result:
    compiled = prepared.compiled(conn.dialect)
    names = compiled.positiontup if compiled.positional else None

    def bind(row: dict[str, Any]) -> Any:
        params = compiled.construct_params(row)
        return tuple(params[n] for n in names) if names is not None else params

    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if isinstance(values, list):
            cursor.executemany(compiled.string, [bind(r) for r in values])
        else:
            cursor.execute(compiled.string, bind(values))
        return _fetched(cursor)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(
            compiled.string, values, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    finally:
        cursor.close()


def _fetched(cursor: Any) -> Result:
    if cursor.description is None:
        return Result([], cursor.rowcount)
    columns = [d[0] for d in cursor.description]
    return Result([Row(zip(columns, found, strict=True)) for found in cursor.fetchall()])


# -- compiling ahead of time ------------------------------------------------------------------

STATEMENTS_FILE = Path(__file__).with_name("sqlite_statements.py")


def all_prepared() -> dict[str, Prepared]:
    """Every prepared statement of the store, by name."""
    import gristmill.store.sql  # noqa: F401  (its modules declare them)

    return dict(sorted(_ALL.items()))


def sqlite_statements_source() -> str:
    """The text of ``sqlite_statements.py`` for the statements as they are now."""
    lines = [
        '"""The SQL of the prepared statements (prepared.py) for SQLite, compiled by SQLAlchemy',
        "ahead of time so that a run need not import it. Generated: after changing a statement",
        'run `make sqlite-statements` (a test fails until then)."""',
        "",
        "from typing import Any",
        "",
        "STATEMENTS: dict[str, tuple[str, dict[str, Any]]] = {",
    ]
    for name, (sql, fixed) in current_sqlite_statements().items():
        lines.append(f"    {name!r}: ({sql!r}, {fixed!r}),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def current_sqlite_statements() -> dict[str, tuple[str, dict[str, Any]]]:
    """What ``sqlite_statements.py`` must hold for the statements as they are now."""
    return {
        name: compile_for_sqlite(p.statement())
        for name, p in all_prepared().items()
        if p.dialect in (None, "sqlite")
    }


def write_sqlite_statements() -> None:
    """Rewrite ``sqlite_statements.py`` (``make sqlite-statements``)."""
    import shutil
    import subprocess

    STATEMENTS_FILE.write_text(sqlite_statements_source())
    ruff = shutil.which("ruff")
    if ruff is not None:  # as `make format` would leave it
        subprocess.run([ruff, "format", "--quiet", str(STATEMENTS_FILE)], check=False)
