"""Every test gets a fresh project (real SQLite store, local artifact store) in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gristmill.project import Project


@pytest.fixture(autouse=True)
def project(gristmill_project: Project) -> Iterator[Project]:
    yield gristmill_project
