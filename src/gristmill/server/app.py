"""``create_app(settings)``: the gristmill server as one FastAPI application. It opens the
metadata store, builds a ``Client`` from parts (``app.state.client``, ``app.state.store``,
``app.state.settings``), maps gristmill's errors to HTTP answers, and includes every router:
``/health`` (the only open route), the API's (``API_MODULES``) and the dashboard's. Needs the
``server`` extra; nothing here runs at ``import gristmill``."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gristmill._version import __version__
from gristmill.errors import (
    GristmillError,
    LoginThrottledError,
)
from gristmill.server import http_status
from gristmill.server.auth import Role, public, require
from gristmill.server.settings import ServerSettings

__all__ = ["app_from_environment", "create_app"]

log = logging.getLogger("gristmill.server")

# The modules under gristmill.server.api whose ``router`` the application includes: a new
# group of routes is one more name here (and its roles are then checked by the route test).
API_MODULES = (
    "auth",
    "info",
    "runs",
    "recording",
    "artifacts",
    "metrics",
    "models",
    "stacks",
    "launch",
)

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class _SecurityHeaders:
    """Headers every answer carries: no MIME sniffing, no framing (clickjacking), no
    referrer to other sites."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


async def _gristmill_error(request: Request, exc: Exception) -> JSONResponse:
    """A GristmillError raised by a route: its message (which says what and how to fix) as
    ``{"detail": ...}``, with the status that fits its kind."""
    assert isinstance(exc, GristmillError)
    status = http_status(exc)
    headers = None
    if isinstance(exc, LoginThrottledError):
        headers = {"Retry-After": str(int(exc.retry_after) + 1)}
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def _artifact_store(settings: ServerSettings) -> Any:
    if settings.artifact_store is not None:
        return settings.artifact_store
    if settings.project is None:
        return None
    from gristmill.project import Project

    try:
        return Project(settings.project).artifact_store()
    except GristmillError as exc:  # the run's recorded stack still says where its artifacts are
        log.warning("no default artifact store for the server: %s", exc)
        return None


def _include_dashboard(app: FastAPI) -> None:
    from gristmill.server import dashboard

    dashboard.mount(app)  # static files
    app.include_router(dashboard.router)


def create_app(settings: ServerSettings) -> FastAPI:
    """The server application over the store at ``settings.store_url``."""
    from gristmill.client import Client
    from gristmill.store import open_store

    store = open_store(settings.store_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="gristmill",
        version=__version__,
        description="The gristmill server: runs, artifacts, lineage, models, stacks.",
        # The spec is served under /api/v1 to viewers and up (below), not open to anyone.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.client = Client(store=store, artifact_store=_artifact_store(settings))
    app.add_exception_handler(GristmillError, _gristmill_error)
    app.add_middleware(_SecurityHeaders)

    @app.get("/health", dependencies=[Depends(public)], tags=["server"])
    def health() -> dict[str, str]:
        """Open to anyone: the server answers (for load balancers and `gristmill up`)."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/v1/openapi.json", dependencies=[Depends(require(Role.VIEWER))], tags=["server"])
    def openapi() -> JSONResponse:
        """The OpenAPI spec of this server's API."""
        return JSONResponse(app.openapi())

    for name in API_MODULES:
        app.include_router(importlib.import_module(f"gristmill.server.api.{name}").router)
    _include_dashboard(app)
    return app


def app_from_environment() -> FastAPI:
    """The application with the settings in ``GRISTMILL_SERVER_SETTINGS``: the factory that
    uvicorn's worker processes call (``gristmill server start --workers N``)."""
    return create_app(ServerSettings.from_environment())
