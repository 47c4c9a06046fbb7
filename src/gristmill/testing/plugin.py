"""The ``gristmill`` pytest plugin: the ``gristmill_project`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.project import Project
from gristmill.testing import temporary_project


@pytest.fixture
def gristmill_project(tmp_path: Path) -> Iterator[Project]:
    """A fresh gristmill project in a temporary folder, used by every gristmill call in the test."""
    with temporary_project(tmp_path / "project") as project:
        yield project
