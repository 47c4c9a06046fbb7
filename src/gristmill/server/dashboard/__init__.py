"""The web dashboard: server-rendered pages (Jinja2 templates, autoescaped) with our own
small stylesheet and script as package data, no build step and nothing fetched from
elsewhere. ``router`` holds the pages and the JSON their script polls; ``mount(app)`` serves
the static files under ``/static/dashboard``. Needs the ``server`` extra."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.server.dashboard.routes import router

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["STATIC_PREFIX", "mount", "router"]

STATIC_PREFIX = "/static/dashboard"


def mount(app: FastAPI) -> None:
    """Serve the dashboard's stylesheet and script (open to anyone: the login page uses
    them; they hold no data)."""
    from fastapi.staticfiles import StaticFiles

    from gristmill.server.dashboard.render import STATIC

    app.mount(STATIC_PREFIX, StaticFiles(directory=str(STATIC)), name="dashboard-static")
