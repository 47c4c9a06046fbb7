"""SQLAlchemy and the schema's tables, imported the first time something of theirs is used.

A run on the embedded SQLite store executes only statements compiled ahead of time
(``prepared.py``, ``sqlite_statements.py``) on the ``sqlite3`` module's connection, so it never
needs SQLAlchemy, whose import is about half of a one-step pipeline's wall time. The capability
modules reach SQLAlchemy and the tables through these two names (``sa.select``, ``s.runs``);
type checkers see the real modules."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


class _OnFirstUse:
    """A module's attributes, the module imported when the first one is asked for."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(importlib.import_module(self._module), name)
        setattr(self, name, value)  # found directly from now on
        return value


if TYPE_CHECKING:
    import sqlalchemy as sa

    from gristmill.store import schema
else:
    sa = _OnFirstUse("sqlalchemy")
    schema = _OnFirstUse("gristmill.store.schema")

__all__ = ["sa", "schema"]
