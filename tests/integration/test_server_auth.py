"""Auth against a real server (``gristmill server start``: uvicorn in its own process on
loopback, from ``gristmill.testing.server``): dashboard login with a cookie and CSRF, API
tokens, role refusals, expiry, revocation, failed-login limits, several workers on
PostgreSQL, and the CLI and server sharing the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gristmill.project import Project
from gristmill.testing.server import RunningServer, free_port, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-c", "from gristmill.cli.main import main; main()"]


def test_dashboard_login_uses_an_http_only_cookie_and_csrf(gristmill_server: RunningServer) -> None:
    server = gristmill_server
    editor = server.users["editor"]
    with httpx.Client(base_url=server.url) as browser:
        wrong = browser.post(
            "/api/v1/auth/login", json={"username": "editor", "password": "not it at all"}
        )
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
        login = browser.post(
            "/api/v1/auth/login", json={"username": "editor", "password": editor.password}
        )
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        set_cookies = login.headers.get_list("set-cookie")
        session = next(c for c in set_cookies if c.startswith("gristmill_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session
        assert browser.get("/api/v1/auth/me").json()["via"] == "session"
        # unsafe requests need the CSRF value, as a header or a form field
        assert browser.post("/api/v1/tokens", json={"name": "a"}).status_code == 403
        headers = {"X-CSRF-Token": csrf}
        assert (
            browser.post("/api/v1/tokens", json={"name": "a"}, headers=headers).status_code == 201
        )
        # a role too low stays refused with the right CSRF value
        assert browser.get("/api/v1/users").status_code == 403
        cookie = browser.cookies["gristmill_session"]
        assert browser.post("/api/v1/auth/logout", data={"csrf_token": csrf}).status_code == 200
    # the ended session is refused even if the browser kept the cookie
    replay = httpx.get(
        f"{server.url}/api/v1/auth/me", cookies={"gristmill_session": cookie}, timeout=10
    )
    assert replay.status_code == 401 and "log in again" in replay.text


def test_tokens_roles_expiry_and_revocation(gristmill_server: RunningServer) -> None:
    server = gristmill_server
    with server.client("viewer") as viewer, server.client("admin") as admin:
        assert viewer.get("/api/v1/auth/me").json()["role"] == "viewer"
        refused = viewer.post("/api/v1/users", json={"name": "x", "password": "longenough"})
        assert refused.status_code == 403 and "needs the admin role" in refused.text
        made = admin.post("/api/v1/users", json={"name": "new", "password": "longenough1"})
        assert made.status_code == 201

        short = viewer.post("/api/v1/tokens", json={"name": "short", "expires": "1s"}).json()
        revocable = viewer.post("/api/v1/tokens", json={"name": "revocable"}).json()
        with server.client(None) as anonymous:
            bad = anonymous.get("/api/v1/auth/me", headers={"Authorization": "Bearer gm_nope"})
            assert bad.status_code == 401
            auth = {"Authorization": f"Bearer {revocable['token']}"}
            assert anonymous.get("/api/v1/auth/me", headers=auth).status_code == 200
            assert viewer.delete(f"/api/v1/tokens/{revocable['id']}").status_code == 200
            revoked = anonymous.get("/api/v1/auth/me", headers=auth)
            assert revoked.status_code == 401 and "revoked" in revoked.text

            time.sleep(max(0.0, short["expires_at"] - time.time()) + 0.2)
            expired = anonymous.get(
                "/api/v1/auth/me", headers={"Authorization": f"Bearer {short['token']}"}
            )
            assert expired.status_code == 401 and "expired" in expired.text
        listed = {t["name"]: t for t in viewer.get("/api/v1/tokens").json()}
        assert listed["viewer-test"]["last_used_at"] is not None


def test_failed_logins_get_429_until_the_wait_is_over(gristmill_server: RunningServer) -> None:
    server = gristmill_server
    viewer = server.users["viewer"]
    with server.client(None) as browser:
        for _ in range(5):
            bad = browser.post(
                "/api/v1/auth/login", json={"username": "viewer", "password": "x" * 9}
            )
            assert bad.status_code == 401
        held = browser.post(
            "/api/v1/auth/login", json={"username": "viewer", "password": viewer.password}
        )
        assert held.status_code == 429
        wait = int(held.headers["retry-after"])
        assert 1 <= wait <= 2
        # the address is held back too: another user from here waits as well
        other = browser.post(
            "/api/v1/auth/login",
            json={"username": "admin", "password": server.users["admin"].password},
        )
        assert other.status_code == 429
        time.sleep(wait)
        ok = browser.post(
            "/api/v1/auth/login", json={"username": "viewer", "password": viewer.password}
        )
        assert ok.status_code == 200
    # tokens are not affected by failed logins
    with server.client("viewer") as client:
        assert client.get("/api/v1/auth/me").status_code == 200


def test_sessions_expire_on_the_server(gristmill_project: Project) -> None:
    with running_server(gristmill_project, args=["--session-hours", "0.0005"]) as server:
        with server.login("viewer") as browser:
            assert browser.get("/api/v1/auth/me").status_code == 200
            cookie = browser.cookies["gristmill_session"]
        time.sleep(2.0)
        late = httpx.get(
            f"{server.url}/api/v1/auth/me", cookies={"gristmill_session": cookie}, timeout=10
        )
        assert late.status_code == 401 and "expired" in late.text


@pytest.mark.slow
def test_two_workers_on_postgresql_share_sessions_tokens_and_limits(
    postgres_database: str,
) -> None:
    with running_server(store_url=postgres_database, workers=2) as server:
        with server.login("editor") as browser:
            answers = {browser.get("/api/v1/auth/me").status_code for _ in range(20)}
            assert answers == {200}
        with server.client(None) as anonymous:
            for _ in range(5):
                bad = anonymous.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": "y" * 9}
                )
                assert bad.status_code == 401
            # whichever worker answers, it counts the same failures
            held = {
                anonymous.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": "y" * 9}
                ).status_code
                for _ in range(6)
            }
            assert held == {429}
        with server.client("admin") as admin:
            assert {u["name"] for u in admin.get("/api/v1/users").json()} == {
                "admin",
                "editor",
                "viewer",
            }


def test_cli_tokens_work_on_the_server_at_once(gristmill_server: RunningServer) -> None:
    server = gristmill_server
    env = {**os.environ, "GRISTMILL_PROJECT": str(server.project)}
    made = subprocess.run(
        [*CLI, "token", "create", "--name", "cli", "--user", "editor", "--expires", "1d"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    token = made.stdout.strip()
    assert token.startswith("gm_") and "not shown again" in made.stderr
    auth = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.url}/api/v1/auth/me", headers=auth, timeout=10)
    assert me.json() == {"user": "editor", "role": "editor", "via": "token", "csrf_token": None}
    listed = subprocess.run(
        [*CLI, "token", "list", "--user", "editor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert token not in listed.stdout and '"name": "cli"' in listed.stdout
    (token_id,) = [t["id"] for t in json.loads(listed.stdout) if t["name"] == "cli"]
    subprocess.run([*CLI, "token", "revoke", token_id], env=env, check=True, capture_output=True)
    assert httpx.get(f"{server.url}/api/v1/auth/me", headers=auth, timeout=10).status_code == 401


def test_up_serves_the_project_and_says_how_to_create_the_first_user(
    gristmill_project: Project, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "GRISTMILL_PROJECT": str(gristmill_project.root)}
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*CLI, "up", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"gristmill up did not answer: {log.read_text()}")
        said = " ".join(log.read_text().split())
        assert f"http://127.0.0.1:{port}" in said
        assert "gristmill user create NAME --role admin" in said
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me").status_code == 401
        # a second server on the same port is refused with a clear message
        again = subprocess.run(
            [*CLI, "up", "--port", str(port)], capture_output=True, text=True, env=env
        )
        assert again.returncode == 2 and "pick another port with --port" in again.stderr
    finally:
        process.terminate()
        process.wait(15)
