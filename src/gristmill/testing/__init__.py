"""Test helpers for gristmill users and for gristmill itself.

``temporary_project()`` gives a real project (SQLite metadata store and local artifact store)
in a temporary folder, so pipeline tests need no setup; with pytest, the ``gristmill_project``
fixture (registered by the ``gristmill`` pytest plugin) does the same per test.
``write_module()`` writes a user module and imports it afresh, for tests that change code.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from gristmill.project import Project, close_stores

__all__ = ["temporary_project", "write_module"]

_ENV = (
    "GRISTMILL_PROJECT",
    "GRISTMILL_STORE_URL",
    "GRISTMILL_STACK",
    "GRISTMILL_CACHE_DIR",
    "XDG_CONFIG_HOME",
)


@contextmanager
def temporary_project(path: str | Path | None = None) -> Iterator[Project]:
    """A fresh, initialized project that every gristmill call uses while the block runs
    (GRISTMILL_PROJECT points at it; a server saved with ``gristmill connect`` is
    ignored); the previous environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in _ENV}
    with tempfile.TemporaryDirectory(prefix="gristmill-test-") as temporary:
        root = Path(path) if path is not None else Path(temporary)
        project = Project(root.resolve())
        project.init()
        for key in _ENV:
            os.environ.pop(key, None)
        os.environ["GRISTMILL_PROJECT"] = str(project.root)
        os.environ["GRISTMILL_CACHE_DIR"] = str(project.directory / "cache")
        # The user's own `gristmill connect` (a server in ~/.config) must not receive a
        # test's runs: user config is read from inside the project while the block runs.
        os.environ["XDG_CONFIG_HOME"] = str(project.directory / "user-config")
        try:
            yield project
        finally:
            close_stores()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def write_module(folder: str | Path, name: str, source: str) -> ModuleType:
    """Write ``folder/<name>.py`` (``source`` dedented) and import it afresh; ``folder`` must be
    on ``sys.path``.

    A rewrite can land in the same second (or clock tick) with source of the same length, and
    every cache that checks a file by modification time and size would then keep the old code:
    the ``.pyc`` (whole seconds and size), ``linecache`` behind ``inspect.getsource``, and the
    code snapshot's digest cache (nanoseconds and size). So a rewritten file's modification time
    is moved at least one second past the old one.
    """
    path = Path(folder) / f"{name}.py"
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(textwrap.dedent(source))
    if before is not None:
        stamp = max(path.stat().st_mtime_ns, before + 1_000_000_000)
        os.utime(path, ns=(stamp, stamp))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)
