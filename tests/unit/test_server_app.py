"""The server's routing logic in process (FastAPI's TestClient over a real SQLite store):
every route declares its role, CSRF on cookie sessions, 401/403/429 answers, the users and
tokens API, security headers, and the missing-extra error. The same checks against a real
uvicorn server are in tests/integration/test_server_auth*.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import gristmill.server
from gristmill.errors import MissingIntegrationError
from gristmill.project import Project
from gristmill.server.app import create_app
from gristmill.server.auth import Role, api_routes
from gristmill.server.credentials import create_token, create_user
from gristmill.server.settings import ServerSettings

PASSWORD = "correct horse battery"
# The routes open to anyone: the health check, logging in (API and the dashboard's form),
# and nothing else.
PUBLIC = {("/health", "GET"), ("/api/v1/auth/login", "POST"), ("/login", "GET"), ("/login", "POST")}


@pytest.fixture
def app_client(project: Project) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = project.store()
    tokens = {}
    for role in Role:
        create_user(store, role.value, role=role, password=PASSWORD)
        tokens[role.value] = create_token(store, role.value, name="t")[0]
    settings = ServerSettings(store_url=project.store_url, project=project.root)
    with TestClient(create_app(settings)) as client:
        yield client, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_route_declares_its_role_and_only_login_and_health_are_open(project: Project) -> None:
    app = create_app(ServerSettings(store_url=project.store_url))
    routes = api_routes(app)
    assert {("/api/v1/users", "POST"), ("/api/v1/tokens", "GET")} <= {
        (r.path, m) for r in routes for m in r.methods
    }
    undeclared = [(r.path, sorted(r.methods)) for r in routes if r.access is None]
    assert undeclared == []
    public = {(r.path, m) for r in routes if r.access == "public" for m in r.methods}
    assert public <= PUBLIC
    assert {("/health", "GET"), ("/api/v1/auth/login", "POST")} <= public
    access = {(r.path, m): r.access for r in routes for m in r.methods}
    assert access["/api/v1/users", "POST"] is Role.ADMIN
    assert access["/api/v1/tokens", "POST"] is Role.VIEWER


def test_refusals_say_what_to_do(app_client: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_client
    missing = client.get("/api/v1/auth/me")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "gristmill token create" in missing.json()["detail"]
    basic = client.get("/api/v1/auth/me", headers={"Authorization": "Basic YWRtaW46eA=="})
    assert basic.status_code == 401 and "Bearer <token>" in basic.json()["detail"]
    low = client.get("/api/v1/users", headers=bearer(tokens["editor"]))
    assert low.status_code == 403
    assert "needs the admin role" in low.json()["detail"]
    assert "gristmill user set-role editor admin" in low.json()["detail"]
    assert client.get("/api/v1/users", headers=bearer(tokens["admin"])).status_code == 200
    # answers carry the security headers; the spec is for signed-in callers only
    assert missing.headers["x-frame-options"] == "DENY"
    assert missing.headers["x-content-type-options"] == "nosniff"
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/api/v1/openapi.json").status_code == 401
    spec = client.get("/api/v1/openapi.json", headers=bearer(tokens["viewer"])).json()
    assert "/api/v1/tokens" in spec["paths"]


def test_a_cookie_session_needs_the_csrf_value_on_unsafe_requests(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = app_client
    login = client.post("/api/v1/auth/login", json={"username": "editor", "password": PASSWORD})
    assert login.status_code == 200
    csrf = login.json()["csrf_token"]
    cookie = login.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie if c.startswith("gristmill_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    assert "Secure" not in session_cookie  # secure_cookies is off on plain HTTP
    assert client.cookies.get("gristmill_csrf") == csrf

    assert client.get("/api/v1/auth/me").json() == {
        "user": "editor",
        "role": "editor",
        "via": "session",
        "csrf_token": csrf,
    }
    refused = client.post("/api/v1/tokens", json={"name": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    made = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    # a form field does too (server-rendered forms), and logging out ends the session
    out = client.post("/api/v1/auth/logout", data={"csrf_token": csrf})
    assert out.status_code == 200
    client.cookies.set("gristmill_session", session_cookie.split(";")[0].split("=", 1)[1])
    assert client.get("/api/v1/auth/me").status_code == 401


def test_secure_cookies_behind_tls(project: Project) -> None:
    store = project.store()
    create_user(store, "ann", role="viewer", password=PASSWORD)
    settings = ServerSettings(store_url=project.store_url, secure_cookies=True)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        login = client.post("/api/v1/auth/login", json={"username": "ann", "password": PASSWORD})
    cookies = login.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("Secure" in c for c in cookies)


def test_tokens_over_the_api(app_client: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_client
    viewer, admin = bearer(tokens["viewer"]), bearer(tokens["admin"])
    made = client.post("/api/v1/tokens", json={"name": "ci", "expires": "30d"}, headers=viewer)
    assert made.status_code == 201
    body = made.json()
    assert body["token"].startswith("gm_") and body["role"] == "viewer"
    assert body["expires_at"] - body["created_at"] == pytest.approx(30 * 86400)
    listed = client.get("/api/v1/tokens", headers=viewer).json()
    assert {t["name"] for t in listed} == {"t", "ci"}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    # a token cannot outrank its creator; only admins see or touch others' tokens
    too_high = client.post("/api/v1/tokens", json={"name": "x", "role": "editor"}, headers=viewer)
    assert too_high.status_code == 403 and "at most" in too_high.json()["detail"]
    assert client.get("/api/v1/tokens?user=admin", headers=viewer).status_code == 403
    assert client.get("/api/v1/tokens?all_users=true", headers=viewer).status_code == 403
    admin_token_id = client.get("/api/v1/tokens", headers=admin).json()[0]["id"]
    assert client.delete(f"/api/v1/tokens/{admin_token_id}", headers=viewer).status_code == 404
    everyone = client.get("/api/v1/tokens?all_users=true", headers=admin).json()
    assert {t["user"] for t in everyone} == {"admin", "editor", "viewer"}
    for_viewer = client.post(
        "/api/v1/tokens",
        json={"name": "by-admin", "user": "viewer", "role": "editor"},
        headers=admin,
    )
    assert for_viewer.status_code == 403  # at most the owner's role
    # revoking works at once
    revoked = client.delete(f"/api/v1/tokens/{body['id']}", headers=viewer)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    gone = client.get("/api/v1/auth/me", headers=bearer(body["token"]))
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]


def test_users_over_the_api(app_client: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_client
    admin = bearer(tokens["admin"])
    made = client.post(
        "/api/v1/users", json={"name": "dan", "role": "editor", "password": PASSWORD}, headers=admin
    )
    assert made.status_code == 201 and made.json()["role"] == "editor"
    assert "password" not in made.text and "argon2" not in made.text
    duplicate = client.post(
        "/api/v1/users", json={"name": "dan", "password": PASSWORD}, headers=admin
    )
    assert duplicate.status_code == 409
    weak = client.post("/api/v1/users", json={"name": "eve", "password": "x"}, headers=admin)
    assert weak.status_code == 400 and "too short" in weak.json()["detail"]
    demote = client.patch("/api/v1/users/admin", json={"role": "viewer"}, headers=admin)
    assert demote.status_code == 400 and "only admin" in demote.json()["detail"]
    assert client.delete("/api/v1/users/admin", headers=admin).status_code == 400
    assert (
        client.patch("/api/v1/users/dan", json={"role": "viewer"}, headers=admin).json()["role"]
        == "viewer"
    )
    assert client.delete("/api/v1/users/dan", headers=admin).status_code == 200
    assert client.get("/api/v1/users/dan", headers=admin).status_code == 404


def test_failed_api_logins_get_429_with_retry_after(project: Project) -> None:
    store = project.store()
    create_user(store, "ann", role="viewer", password=PASSWORD)
    settings = ServerSettings(store_url=project.store_url, login_max_failures=2)
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            bad = client.post(
                "/api/v1/auth/login", json={"username": "ann", "password": "wrong!!!"}
            )
            assert bad.status_code == 401
        held = client.post("/api/v1/auth/login", json={"username": "ann", "password": PASSWORD})
    assert held.status_code == 429
    assert int(held.headers["retry-after"]) >= 1
    assert "too many failed logins" in held.json()["detail"]


def test_a_missing_server_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(gristmill.server.SERVER_PACKAGES, "gristmill_no_such_module", "nothing")
    with pytest.raises(MissingIntegrationError, match=r'pip install "gristmill\[server\]"'):
        gristmill.server.require_server_extra()


def test_every_api_module_with_routes_is_included() -> None:
    """A module of routes added under gristmill.server.api but not named in API_MODULES would
    be silently missing from the server (and from the route-role test)."""
    import importlib
    import pkgutil

    from gristmill.server import api
    from gristmill.server.app import API_MODULES

    with_routes = {
        info.name
        for info in pkgutil.iter_modules(api.__path__)
        if hasattr(importlib.import_module(f"{api.__name__}.{info.name}"), "router")
    }
    assert with_routes == set(API_MODULES)
