"""Test helpers for gristmill users and for gristmill itself.

``temporary_project()`` gives a real project (SQLite metadata store and local artifact store)
in a temporary folder, so pipeline tests need no setup; with pytest, the ``gristmill_project``
fixture (registered by the ``gristmill`` pytest plugin) does the same per test.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gristmill.project import Project, close_stores

__all__ = ["temporary_project"]

_ENV = ("GRISTMILL_PROJECT", "GRISTMILL_STORE_URL", "GRISTMILL_STACK", "GRISTMILL_CACHE_DIR")


@contextmanager
def temporary_project(path: str | Path | None = None) -> Iterator[Project]:
    """A fresh, initialized project that every gristmill call uses while the block runs
    (GRISTMILL_PROJECT points at it); the previous environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in _ENV}
    with tempfile.TemporaryDirectory(prefix="gristmill-test-") as temporary:
        root = Path(path) if path is not None else Path(temporary)
        project = Project(root.resolve())
        project.init()
        for key in _ENV:
            os.environ.pop(key, None)
        os.environ["GRISTMILL_PROJECT"] = str(project.root)
        os.environ["GRISTMILL_CACHE_DIR"] = str(project.directory / "cache")
        try:
            yield project
        finally:
            close_stores()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
