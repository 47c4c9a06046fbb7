"""The ``gristmill`` pytest plugin: the ``gristmill_project`` fixture, and
``gristmill_server`` (a real server over that project; needs the ``server`` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gristmill.project import Project
from gristmill.testing import temporary_project

if TYPE_CHECKING:
    from gristmill.testing.server import RunningServer


@pytest.fixture
def gristmill_project(tmp_path: Path) -> Iterator[Project]:
    """A fresh gristmill project in a temporary folder, used by every gristmill call in the test."""
    with temporary_project(tmp_path / "project") as project:
        yield project


@pytest.fixture
def gristmill_server(gristmill_project: Project) -> Iterator[RunningServer]:
    """A gristmill server (uvicorn, its own process, a free loopback port) over the test's
    project, with an admin, an editor and a viewer (``server.users[role]``: password and
    token); ``server.client(role)`` and ``server.login(role)`` give httpx clients."""
    from gristmill.testing.server import running_server

    with running_server(gristmill_project) as server:
        yield server
