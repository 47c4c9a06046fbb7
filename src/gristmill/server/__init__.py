"""The gristmill server: a FastAPI REST API (``/api/v1``), users, roles, API tokens and
dashboard sessions (``auth``), and the dashboard. Importing this package imports nothing
heavy; ``gristmill.server.app`` needs the ``server`` extra (``require_server_extra``).

    settings.py      ServerSettings: the store, artifact store, cookies, limits
    credentials.py   password hashing, tokens, sessions, login rate limits (no FastAPI)
    auth.py          Role, Principal, require(role): the FastAPI side of credentials
    app.py           create_app(settings): every router, error handlers, /health
    api/             the /api/v1 routes (auth.py: login, users, tokens; the rest: the store)
    dashboard/       the web pages
"""

from __future__ import annotations

import importlib.util

from gristmill.errors import (
    AuthError,
    GristmillError,
    LoginThrottledError,
    MissingIntegrationError,
    NotFoundError,
    StoreError,
)

__all__ = ["SERVER_PACKAGES", "http_status", "require_server_extra"]

# import name → distribution name, for the `server` extra.
SERVER_PACKAGES = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "argon2": "argon2-cffi",
    "jinja2": "jinja2",
    "multipart": "python-multipart",
    "httpx": "httpx",
}


def require_server_extra(feature: str = "the gristmill server") -> None:
    """MissingIntegrationError naming ``pip install "gristmill[server]"`` when a package of
    the ``server`` extra is missing; checked without importing anything."""
    for module, distribution in SERVER_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            raise MissingIntegrationError(distribution, "server", feature)


def http_status(exc: GristmillError) -> int:
    """The HTTP status a GristmillError is answered with, by the API and the dashboard."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, LoginThrottledError):
        return 429
    if isinstance(exc, AuthError):
        return 403
    if isinstance(exc, StoreError):
        return 409
    return 400
