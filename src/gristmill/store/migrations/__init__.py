"""Alembic migrations of the metadata store, run programmatically (no alembic.ini needed):
``upgrade(connection)`` brings any known revision up to the head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
# The newest revision: what schema.py's tables are (a test keeps them in step). Here rather than
# in schema.py so that checking a store's revision needs no SQLAlchemy.
HEAD_REVISION = "0007"


def config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(config()).walk_revisions()}


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(config()).get_current_head())


def upgrade(connection: Any, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(config(connection), revision)
