"""Every route of the server, whoever wrote it (auth, the store's REST API, the dashboard),
refuses a caller with no credentials (401), with a bad token (401) and with a role below the
one it declares (403), and every unsafe route refuses a logged-in browser that does not send
the CSRF value (403). The routes are enumerated from the app itself, so new routes are
covered as they appear; only the health check and logging in are open."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from gristmill.project import Project
from gristmill.server.app import create_app
from gristmill.server.auth import Role, RouteAccess, api_routes
from gristmill.server.settings import ServerSettings
from gristmill.testing.server import RunningServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PUBLIC = {("/health", "GET"), ("/api/v1/auth/login", "POST"), ("/login", "GET"), ("/login", "POST")}
BELOW = {Role.EDITOR: "viewer", Role.ADMIN: "editor"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    project = Project(tmp_path_factory.mktemp("routes") / "project")
    project.init()
    with running_server(project) as running:
        yield running


@pytest.fixture(scope="module")
def routes(server: RunningServer) -> list[tuple[str, str, RouteAccess]]:
    app = create_app(ServerSettings(store_url=server.store_url))
    found = sorted(
        (route.path, method, route)
        for route in api_routes(app)
        for method in route.methods
        if method != "HEAD"
    )
    app.state.store.close()
    return found


def concrete(path: str) -> str:
    """The path with every parameter filled (``{name}``, ``{name:path}``)."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def refused(answer: httpx.Response, path: str) -> bool:
    """401, or for a dashboard page, 401 shown as the login form or a redirect to it."""
    if answer.status_code == 401:
        return True
    return (
        not path.startswith("/api/")
        and answer.status_code in (302, 303, 307)
        and ("/login" in answer.headers.get("location", ""))
    )


def test_every_route_is_declared_and_only_login_and_health_are_open(
    routes: list[tuple[str, str, RouteAccess]],
) -> None:
    assert len(routes) > 10
    undeclared = [(p, m) for p, m, r in routes if r.access is None]
    assert undeclared == [], "routes without Depends(require(...)) or Depends(public)"
    public = {(p, m) for p, m, r in routes if r.access == "public"}
    assert public <= PUBLIC


def test_every_route_refuses_no_credentials_a_bad_token_and_a_low_role(
    server: RunningServer, routes: list[tuple[str, str, RouteAccess]]
) -> None:
    problems = []
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as http:
        for path, method, route in routes:
            if route.access == "public":
                continue
            url = concrete(path)
            nobody = http.request(method, url)
            if not refused(nobody, path):
                problems.append(f"{method} {path} without credentials: {nobody.status_code}")
            bad = http.request(method, url, headers={"Authorization": "Bearer gm_not-a-token"})
            if bad.status_code != 401:
                problems.append(f"{method} {path} with a bad token: {bad.status_code}")
            assert isinstance(route.access, Role)
            if route.access in BELOW:
                low = BELOW[route.access]
                answer = http.request(method, url, headers=server.headers(low))
                if answer.status_code != 403:
                    problems.append(f"{method} {path} as {low}: {answer.status_code}")
    assert problems == []


def test_every_unsafe_route_wants_the_csrf_value_from_a_browser(
    server: RunningServer, routes: list[tuple[str, str, RouteAccess]]
) -> None:
    problems = []
    with server.login("admin") as browser:
        del browser.headers["X-CSRF-Token"]
        for path, method, route in routes:
            if route.access == "public" or method not in UNSAFE:
                continue
            answer = browser.request(method, concrete(path), follow_redirects=False)
            if answer.status_code != 403:
                problems.append(f"{method} {path} without CSRF: {answer.status_code}")
    assert problems == []


def test_the_openapi_spec_lists_no_route_the_enumeration_missed(
    server: RunningServer, routes: list[tuple[str, str, RouteAccess]]
) -> None:
    with server.client("viewer") as viewer:
        spec = viewer.get("/api/v1/openapi.json")
    assert spec.status_code == 200, spec.text
    listed = {
        (path, method.upper()) for path, item in spec.json()["paths"].items() for method in item
    }
    assert listed <= {(p, m) for p, m, _ in routes}
