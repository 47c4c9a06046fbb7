"""Who may call what: ``Role``, ``Principal`` and ``require(role)``, the FastAPI dependency
every route declares; ``public`` for the few routes open to anyone.

How a route declares its role (every route must, or the all-routes test fails)::

    router = APIRouter(prefix="/api/v1", dependencies=[Depends(require(Role.VIEWER))])

    @router.post("/runs/{run}/stop", dependencies=[Depends(require(Role.EDITOR))])
    def stop(run: str) -> ...: ...

    @router.get("/me")
    def me(principal: AsViewer) -> ...: ...   # AsViewer = Annotated[Principal, Depends(...)]

The needed role of a route is found from the route itself: ``require(role)`` returns one
function per role carrying ``__gristmill_role__``, and ``route_access(route)`` walks the
route's dependencies (the router's included) and returns the highest role found, ``"public"``
for a route that depends on ``public`` only, or None for an undeclared route;
``api_routes(app)`` lists every route of an app with its access.
``tests/integration/test_server_auth_routes.py`` calls every route of the OpenAPI spec with no
credentials, a bad token and a too-low role, and expects 401, 401 and 403.

Credentials: ``Authorization: Bearer <token>`` (API clients, CI), else the dashboard session
cookie (``gristmill_session``: HttpOnly, SameSite=Lax, Secure when ``secure_cookies``). A
cookie-authenticated POST/PUT/PATCH/DELETE must also carry the session's CSRF value, as the
``X-CSRF-Token`` header or a ``csrf_token`` form field (double submit): the value is
``principal.csrf_token`` (pages render it into forms and a ``<meta name="csrf-token">``), and
is also in the ``gristmill_csrf`` cookie, which page scripts may read.

Refusals are JSON ``{"detail": "..."}``: 401 (with ``WWW-Authenticate: Bearer``) for missing,
unknown, expired or revoked credentials, 403 for a role too low or a missing/wrong CSRF
value, 429 (with ``Retry-After``) for logins after too many failures.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from gristmill.errors import AuthError
from gristmill.server.credentials import (
    LoginLimits,
    Principal,
    Role,
    authenticate_password,
    authenticate_session,
    authenticate_token,
    end_session,
    start_session,
)
from gristmill.server.settings import ServerSettings
from gristmill.store import MetadataStore

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AsAdmin",
    "AsEditor",
    "AsViewer",
    "Principal",
    "Role",
    "RouteAccess",
    "api_routes",
    "authenticate_password",
    "clear_session_cookies",
    "client_address",
    "end_session",
    "login_limits",
    "public",
    "require",
    "route_access",
    "set_session_cookies",
    "start_session",
]

SESSION_COOKIE = "gristmill_session"
CSRF_COOKIE = "gristmill_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ROLE_ATTRIBUTE = "__gristmill_role__"
_PUBLIC_ATTRIBUTE = "__gristmill_public__"


def app_store(request: Request) -> MetadataStore:
    """The metadata store the application serves (``create_app`` sets it)."""
    store: MetadataStore = request.app.state.store
    return store


def app_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def login_limits(settings: ServerSettings) -> LoginLimits:
    return LoginLimits(
        max_failures=settings.login_max_failures,
        window=settings.login_window,
        max_delay=settings.login_max_delay,
    )


def client_address(request: Request) -> str | None:
    """The caller's address (the proxy's X-Forwarded-For when uvicorn trusts that proxy:
    ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def _authenticate(request: Request) -> Principal:
    """The request's principal (cached on the request); 401 when there is none."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    store = app_store(request)
    header = request.headers.get("authorization")
    try:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized(
                    "the Authorization header must be 'Bearer <token>'; create a token with "
                    "`gristmill token create --name NAME`"
                )
            interval = app_settings(request).token_touch_interval
            principal = await run_in_threadpool(
                authenticate_token, store, token, touch_interval=interval
            )
        elif cookie := request.cookies.get(SESSION_COOKIE):
            interval = app_settings(request).token_touch_interval
            principal = await run_in_threadpool(
                authenticate_session, store, cookie, touch_interval=interval
            )
        else:
            raise _unauthorized(
                "authentication required: send 'Authorization: Bearer <token>' (create one "
                "with `gristmill token create --name NAME`) or log in at /login"
            )
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None
    request.state.principal = principal
    return principal


async def _check_csrf(request: Request, principal: Principal) -> None:
    if principal.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        kind = request.headers.get("content-type", "")
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            field = (await request.form()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
    expected = principal.csrf_token or ""
    if not sent or not expected or not secrets.compare_digest(sent, expected):
        raise HTTPException(
            403,
            f"missing or wrong CSRF token: a logged-in browser must send the session's CSRF "
            f"value as the {CSRF_HEADER} header or a '{CSRF_FIELD}' form field (reload the page "
            "to get a fresh one); API clients should use a bearer token instead",
        )


def _make_requirement(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    async def requirement(request: Request) -> Principal:
        principal = await _authenticate(request)
        if not principal.at_least(role):
            how = " (the role of the token used)" if principal.via == "token" else ""
            raise HTTPException(
                403,
                f"this needs the {role} role; '{principal.user}' has {principal.role}{how}. "
                f"An admin can change it: `gristmill user set-role {principal.user} {role}`",
            )
        await _check_csrf(request, principal)
        return principal

    requirement.__name__ = f"require_{role.value}"
    setattr(requirement, _ROLE_ATTRIBUTE, role)
    return requirement


_REQUIREMENTS = {role: _make_requirement(role) for role in Role}


def require(role: Role | str) -> Callable[[Request], Awaitable[Principal]]:
    """The FastAPI dependency that lets through a caller with at least ``role``, returning
    its ``Principal``: ``Depends(require(Role.EDITOR))``."""
    return _REQUIREMENTS[Role.parse(role)]


# For a route that uses the caller: ``def me(principal: AsViewer) -> ...``.
AsViewer = Annotated[Principal, Depends(require(Role.VIEWER))]
AsEditor = Annotated[Principal, Depends(require(Role.EDITOR))]
AsAdmin = Annotated[Principal, Depends(require(Role.ADMIN))]


def public() -> None:
    """The dependency that marks a route deliberately open to anyone (``/health``, the login
    form and its assets). Every other route must ``require`` a role."""


setattr(public, _PUBLIC_ATTRIBUTE, True)


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in getattr(dependant, "dependencies", ()):
        yield sub.call
        yield from _calls(sub)


def route_access(route: Any) -> Role | Literal["public"] | None:
    """The role a route needs (the highest ``require`` among its dependencies, the routers'
    included), ``"public"`` for a route marked with ``public`` only, or None for one that
    declares neither. ``route``: an ``APIRoute`` or a route context from ``api_routes``."""
    calls = list(_calls(getattr(route, "dependant", None)))
    roles: list[Role] = [
        r for r in (getattr(call, _ROLE_ATTRIBUTE, None) for call in calls) if isinstance(r, Role)
    ]
    if roles:
        return max(roles)
    if any(getattr(call, _PUBLIC_ATTRIBUTE, False) for call in calls):
        return "public"
    return None


@dataclass(frozen=True)
class RouteAccess:
    """One HTTP route of the app and the role it needs (see ``route_access``)."""

    path: str
    methods: frozenset[str]
    access: Role | Literal["public"] | None
    name: str


def api_routes(app: FastAPI) -> list[RouteAccess]:
    """Every route with an endpoint (included routers' routes as the app serves them, with
    the routers' dependencies), and what each needs: what the all-routes test checks."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept as contexts
        contexts: Iterable[Any] = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    found = []
    for route in contexts:
        if getattr(route, "dependant", None) is None or not getattr(route, "methods", None):
            continue
        found.append(
            RouteAccess(
                path=str(route.path),
                methods=frozenset(route.methods),
                access=route_access(route),
                name=str(route.name),
            )
        )
    return found


def set_session_cookies(
    response: Response, cookie: str, csrf_token: str, *, settings: ServerSettings
) -> None:
    """Give the browser its session: the HttpOnly session cookie, and the CSRF value in a
    cookie page scripts can read (double submit)."""
    common: dict[str, Any] = {
        "max_age": int(settings.session_lifetime),
        "secure": settings.secure_cookies,
        "samesite": "lax",
        "path": "/",
    }
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, csrf_token, httponly=False, **common)


def clear_session_cookies(response: Response, *, settings: ServerSettings) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name,
            path="/",
            secure=settings.secure_cookies,
            httponly=name == SESSION_COOKIE,
            samesite="lax",
        )
