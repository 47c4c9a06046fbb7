"""Client/server mode against a real server (``gristmill server start`` in its own process):
a pipeline run from a second process records through the server and is visible over the API
while it runs (polled with ETags); ``gristmill connect`` end to end; store errors, refused
tokens and a server that is down come back as gristmill's own errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.errors import ConfigError, NotFoundError, StoreError
from gristmill.store.rest import RestStore
from gristmill.testing.server import RunningServer, free_port, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATED = """
import sys, time
from pathlib import Path
from typing import Annotated
from gristmill import pipeline, step

@step
def first() -> int:
    return 20

@step(cache=False)
def slow(x: int, gate: str = "") -> Annotated[int, "answer"]:
    print("waiting for the gate")
    while not Path(gate).exists():
        time.sleep(0.05)
    print("through the gate")
    return x + 22

@pipeline
def gated(gate: str = ""):
    slow(first(), gate=gate)

if __name__ == "__main__":
    gated(gate=sys.argv[1])
"""


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with running_server() as started:
        yield started


def _shared_stack(server: RunningServer, root: Path) -> None:
    """A stack whose artifact store both the runner and the server can reach (a folder here;
    S3 or a shared disk between machines)."""
    store = RestStore(server.url, server.token("editor"))
    try:
        store.save_component("artifact_store", "shared", "local", {"root": str(root)})
        store.save_component("orchestrator", "local", "local", {})
        store.save_stack("shared", {"orchestrator": "local", "artifact_store": "shared"})
    finally:
        store.close()


def _runner_env(server: RunningServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GRISTMILL_STORE_URL"}
    env.update(GRISTMILL_STORE_URL=server.url, GRISTMILL_API_TOKEN=server.token("editor"))
    env.update(extra)
    return env


def _poll(viewer: httpx.Client, path: str, etag: str | None) -> tuple[int, str | None, Any]:
    headers = {"If-None-Match": etag} if etag else {}
    answer = viewer.get(path, headers=headers)
    assert answer.status_code in (200, 304), answer.text
    body = answer.json() if answer.status_code == 200 else None
    return answer.status_code, answer.headers.get("ETag"), body


def test_a_run_from_another_process_is_visible_while_it_runs(
    server: RunningServer, tmp_path: Path
) -> None:
    _shared_stack(server, tmp_path / "shared-artifacts")
    script = tmp_path / "gated.py"
    script.write_text(textwrap.dedent(GATED))
    gate = tmp_path / "gate"
    process = subprocess.Popen(
        [sys.executable, str(script), str(gate)],
        cwd=tmp_path,
        env=_runner_env(server, GRISTMILL_STACK="shared"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    viewer = server.client("viewer")
    try:
        # The run appears, running, with its slow step running: seen by polling with ETags.
        etag = None
        not_modified = 0
        run: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, etag_now, body = _poll(viewer, "/api/v1/runs?pipeline=gated", etag)
            if status == 304:
                not_modified += 1
            else:
                etag = etag_now
                if body["items"]:
                    run = body["items"][0]
                    steps = viewer.get(f"/api/v1/runs/{run['id']}/steps").json()
                    if run["status"] == "running" and steps[1]["status"] == "running":
                        break
            time.sleep(0.05)
        else:
            raise AssertionError(f"never saw the run running; last: {run}")
        assert run["pipeline_name"] == "gated" and body["total"] == 1
        assert not_modified > 0  # unchanged listings were answered 304, without a body
        status, same, _ = _poll(viewer, "/api/v1/runs?pipeline=gated", etag)
        assert (status, same) == (304, etag)

        gate.touch()
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output

        status, etag_after, body = _poll(viewer, "/api/v1/runs?pipeline=gated", etag)
        assert status == 200 and etag_after != etag
        assert body["items"][0]["status"] == "completed"
        page = viewer.get(f"/api/v1/runs/{run['id']}/page").json()
        assert [s["name"] for s in page["steps"]] == ["first", "slow"]
        assert page["steps"][1]["outputs"]["answer"]["artifact_name"] == "answer"
        slow_id = page["steps"][1]["id"]
        logs = viewer.get(f"/api/v1/step-runs/{slow_id}/logs").json()
        assert "through the gate" in logs["text"] and logs["complete"]
        rest = viewer.get(f"/api/v1/step-runs/{slow_id}/logs?offset={logs['next_offset']}")
        assert rest.json()["text"] == ""
        # the artifact went straight to the shared artifact store, never through the server
        answer = page["steps"][1]["outputs"]["answer"]
        assert answer["uri"].startswith(str(tmp_path / "shared-artifacts"))
    finally:
        gate.touch()
        if process.poll() is None:
            process.kill()
        viewer.close()


def test_connect_saves_the_server_for_the_cli_and_runs(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_home = tmp_path / "config"
    elsewhere = tmp_path / "no-project"
    elsewhere.mkdir()
    gristmill = str(Path(sys.executable).with_name("gristmill"))
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GRISTMILL_") or k == "GRISTMILL_CACHE_DIR"
    }
    base["XDG_CONFIG_HOME"] = str(config_home)

    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [gristmill, *args],
            cwd=elsewhere,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    # A bad token is refused by the server, and nothing is saved.
    refused = cli("connect", server.url, "--token", "gm_not-a-token")
    assert refused.returncode != 0
    assert "refused the token" in refused.stdout + refused.stderr
    assert not (config_home / "gristmill" / "connection.json").exists()

    token = server.token("editor")
    done = cli("connect", server.url + "/", GRISTMILL_API_TOKEN=token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "editor" in done.stdout and token not in done.stdout + done.stderr
    saved = config_home / "gristmill" / "connection.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": server.url, "token": token}

    # A pipeline run in a folder with no project records through the server.
    (elsewhere / "single.py").write_text(
        "from gristmill import pipeline, step\n\n@step\ndef one() -> int:\n    return 1\n\n"
        "@pipeline\ndef single():\n    one()\n\nif __name__ == '__main__':\n    single()\n"
    )
    ran = subprocess.run(
        [sys.executable, "single.py"],
        cwd=elsewhere,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    listed = cli("runs", "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [r["pipeline"] for r in json.loads(listed.stdout)] == ["single"]
    seen = server.client("viewer").get("/api/v1/runs").json()
    assert [r["pipeline_name"] for r in seen["items"]] == ["single"]

    # Running made .gristmill/ here for the local artifacts; its own SQLite store is empty.
    assert (elsewhere / ".gristmill").is_dir()
    # The environment wins over the file.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert json.loads(cli("runs", "list", "--json", GRISTMILL_STORE_URL=other).stdout) == []

    gone = cli("disconnect")
    assert gone.returncode == 0 and server.url in gone.stdout
    assert not saved.exists()
    after = cli("runs", "list", "--json")
    assert after.returncode == 0 and json.loads(after.stdout) == []  # the project's own store
    assert cli("disconnect").stdout.startswith("Not connected")


def test_errors_come_back_as_gristmill_errors(server: RunningServer) -> None:
    viewer = RestStore(server.url, server.token("viewer"))
    editor = RestStore(server.url, server.token("editor"))
    try:
        with pytest.raises(NotFoundError, match="no run with id or name 'no-such-run'"):
            viewer.get_run("no-such-run")
        with pytest.raises(NotFoundError):
            viewer.get_artifact_version("no-such-artifact")
        with pytest.raises(StoreError, match=r"refused the token.*GRISTMILL_API_TOKEN"):
            RestStore(server.url, "gm_wrong").list_runs()
        with pytest.raises(StoreError, match="refused the token"):
            RestStore(server.url, None).list_stacks()
        with pytest.raises(StoreError, match="editor role"):
            viewer.save_component("orchestrator", "mine", "local", {})
        editor.save_component("artifact_store", "kept", "local", {"root": "/tmp/kept"})
        editor.save_stack("keeper", {"orchestrator": "local", "artifact_store": "kept"})
        with pytest.raises(StoreError, match="is used by stack"):  # a 409, the same class
            editor.delete_component("artifact_store", "kept")
        with pytest.raises(ConfigError, match="stale_after"):  # a 422: a bad value
            editor.reap_dead_runs(time.time(), stale_after=-1)
        # a secret's ciphertext needs an editor; its names and keys a viewer
        editor.save_secret("creds", ["token"], "ciphertext-not-clear")
        assert [(s.name, s.keys, s.ciphertext) for s in viewer.list_secrets()] == [
            ("creds", ["token"], "")
        ]
        with pytest.raises(StoreError, match="editor role"):
            viewer.get_secret("creds")
        assert editor.get_secret("creds").ciphertext == "ciphertext-not-clear"
    finally:
        viewer.close()
        editor.close()

    down = RestStore(f"http://127.0.0.1:{free_port()}", "gm_any")
    started = time.monotonic()
    with pytest.raises(
        StoreError,
        match=r"cannot reach the gristmill server at .*connection refused; is it running\? \(`gristmill up`",
    ):
        down.list_runs()
    assert time.monotonic() - started < 10  # a few quick retries, not a hang


def test_lists_are_paged_filtered_and_cheap_to_poll(server: RunningServer) -> None:
    from gristmill.store import RunRecord, StepRunRecord
    from gristmill.store.ids import pipeline_version_id

    editor = RestStore(server.url, server.token("editor"))
    now = time.time()
    for i in range(7):
        spec_hash = "a" * 64
        run = RunRecord(
            id=f"{i:032x}",
            name=f"paged-{i}",
            pipeline_name="paged" if i < 5 else "other",
            pipeline_version_id=pipeline_version_id("paged" if i < 5 else "other", spec_hash),
            status="completed",
            created_at=now + i,
            spec_hash=spec_hash,
            tags=["even"] if i % 2 == 0 else [],
            stack={"name": "default", "components": {}},
        )
        step = StepRunRecord(
            id=f"{i + 100:032x}",
            run_id=run.id,
            name="s",
            source="m:s",
            status="pending",
            created_at=now + i,
        )
        editor.create_run(run, [step], spec_json="{}")
    editor.close()
    viewer = server.client("viewer")
    try:
        first = viewer.get("/api/v1/runs", params={"pipeline": "paged", "limit": 2})
        body = first.json()
        assert first.headers["X-Total-Count"] == "5" and body["total"] == 5
        assert [r["name"] for r in body["items"]] == ["paged-4", "paged-3"]
        assert body["next_offset"] == 2
        last = viewer.get("/api/v1/runs", params={"pipeline": "paged", "offset": 4}).json()
        assert [r["name"] for r in last["items"]] == ["paged-0"] and last["next_offset"] is None
        tagged = viewer.get("/api/v1/runs", params={"tag": "even", "limit": 2}).json()
        assert tagged["total"] == 4 and [r["name"] for r in tagged["items"]] == [
            "paged-6",
            "paged-4",
        ]
        found = viewer.get("/api/v1/runs", params={"search": "PAGED-3"}).json()
        assert [r["name"] for r in found["items"]] == ["paged-3"]
        assert viewer.get("/api/v1/runs", params={"stack": "nope"}).json()["total"] == 0
        assert viewer.get("/api/v1/runs", params={"limit": 5000}).status_code == 422
        bad = viewer.get("/api/v1/runs", params={"status": "sleeping"})
        assert bad.status_code == 404 and bad.json()["error"] == "NotFoundError"

        one = viewer.get("/api/v1/runs/paged-2")
        assert one.json()["id"] == f"{2:032x}"
        again = viewer.get("/api/v1/runs/paged-2", headers={"If-None-Match": one.headers["ETag"]})
        assert again.status_code == 304 and again.content == b""
        spec = viewer.get("/api/v1/openapi.json").json()
        assert (
            "/api/v1/runs" in spec["paths"]
            and "/api/v1/step-runs/{step_run_id}/logs" in spec["paths"]
        )
    finally:
        viewer.close()
