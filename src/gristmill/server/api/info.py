"""``GET /api/v1/info``: what a client needs to know about the server it talks to (versions,
where the server reads artifacts, who the caller is). ``gristmill connect`` calls it to check
a token."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from gristmill.server.api._common import Caller, reply, store_router
from gristmill.server.auth import Principal

router = store_router("server")


def _artifact_root(request: Request) -> str | None:
    """The root of the artifact store the server reads from when a run's stack does not say
    (``--artifact-store``, else the served project's default one), if any."""
    settings = getattr(request.app.state, "settings", None)
    given = getattr(settings, "artifact_store", None)
    if given:
        return str(given)
    project = getattr(settings, "project", None)
    if project is None:
        return None
    try:
        from gristmill.project import Project

        return Project(project).artifact_store().root
    except Exception:  # a stack that cannot be built here: the client learns nothing
        return None


@router.get("/info", summary="The server: versions, artifact store, the caller")
def info(request: Request, principal: Principal = Caller) -> Response:
    from gristmill._version import __version__

    store = request.app.state.store
    data: dict[str, Any] = {
        "gristmill": __version__,
        "api": "v1",
        "store": type(store).__name__,
        "artifact_store": _artifact_root(request),
        "user": principal.user,
        "role": str(principal.role.value),
        "via": principal.via,
    }
    return reply(request, data)
