"""What the store's API routes share: the router (``store_router``) whose routes turn
gristmill errors into HTTP answers, JSON replies with an ``ETag`` (a GET whose
``If-None-Match`` matches is answered 304, empty), pages of lists (``total``,
``X-Total-Count``, ``next_offset``), and the store and client of the app.

Error answers are ``{"detail": message, "error": class name}``: NotFoundError → 404, a
refused change (StoreError) → 409, a bad value (ConfigError, ParameterError, ...) → 422; the
REST store raises the same class again from ``error``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute

from gristmill.client import Client
from gristmill.errors import GristmillError, NotFoundError, StoreError
from gristmill.server.auth import Role, app_store, require
from gristmill.store.rest import wire

API_PREFIX = "/api/v1"
MAX_PAGE = 1000
JSON = "application/json"

VIEWER = Depends(require(Role.VIEWER))
EDITOR = Depends(require(Role.EDITOR))
# As a parameter, for routes that need to know who calls: ``principal: Principal = Caller``.
Caller = VIEWER
EditorCaller = EDITOR


def error_status(exc: GristmillError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StoreError):
        return 409
    if isinstance(exc, (ValueError, TypeError)):
        return 422
    return 400


def error_response(exc: GristmillError) -> Response:
    body = wire.to_json({"detail": str(exc), "error": type(exc).__name__})
    return Response(body, status_code=error_status(exc), media_type=JSON)


class StoreRoute(APIRoute):
    """A route whose gristmill errors are answered as JSON with the matching status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except GristmillError as exc:
                return error_response(exc)

        return handle


def store_router(tag: str) -> APIRouter:
    """The router of one group of store routes under ``/api/v1``: every route readable by a
    viewer at least; routes that change something add ``dependencies=[EDITOR]``."""
    return APIRouter(prefix=API_PREFIX, tags=[tag], route_class=StoreRoute, dependencies=[VIEWER])


def get_client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


Store = Depends(app_store)
Limit = Query(50, ge=0, le=MAX_PAGE, description=f"items per page (at most {MAX_PAGE})")
Offset = Query(0, ge=0, description="items to skip")


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def reply(
    request: Request,
    data: Any,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``data`` (records included) as JSON; a GET gets an ETag and, when the caller already
    holds that version (``If-None-Match``), a 304 with no body."""
    body = wire.to_json(data)
    headers = dict(headers or {})
    if request.method == "GET":
        etag = etag_of(body)
        headers["ETag"] = etag
        headers["Cache-Control"] = "no-cache"  # cache, but ask every time (cheap: a 304)
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def page(
    request: Request,
    items: Sequence[Any],
    *,
    limit: int,
    offset: int,
    total: int | None,
) -> Response:
    """One page of a list: ``{"items", "total", "limit", "offset", "next_offset"}``;
    ``total`` (also ``X-Total-Count``) is None where counting would cost a scan, and
    ``next_offset`` None on the last page."""
    more = len(items) >= limit > 0 if total is None else offset + len(items) < total
    body = {
        "items": list(items),
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(items) if more else None,
    }
    headers = {"X-Total-Count": str(total)} if total is not None else None
    return reply(request, body, headers=headers)


def sliced(request: Request, items: Sequence[Any], *, limit: int, offset: int) -> Response:
    """A page of a list the store returns whole (stacks, models, experiments: short ones)."""
    return page(
        request, items[offset : offset + limit], limit=limit, offset=offset, total=len(items)
    )
