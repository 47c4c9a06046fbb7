"""The Ray orchestrator on an external Ray cluster: a real ``ray start --head`` on loopback (its
own temp dir and ports, stopped by killing its process group, never by ``ray stop``, which
would stop every Ray of this machine), and the quickstart run through it with the CLI, by GCS
address and by Ray Client (``ray://``) address. The cluster's workers get the stores from their
own environment, as on a real cluster."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray")

from gristmill.project import Project
from gristmill.testing.services import free_port

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart"
pytestmark = [pytest.mark.integration, pytest.mark.slow]
# Ray's token authentication, with a token of this test's own (not ~/.ray/auth_token): the
# head and every process that joins it share it through the environment.
RAY_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "RAY_"))}
    return {**env, **RAY_AUTH}


@dataclass
class RayCluster:
    address: str  # host:port of its GCS
    client_address: str  # ray://host:port of its Ray Client server
    folder: Path  # the quickstart project its workers record into
    logs: Path  # its session's logs: a worker-*-PID.out file per worker process


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    return subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def ray_cluster(tmp_path: Path, project: Project) -> Iterator[RayCluster]:
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    assert gristmill("init", cwd=folder).returncode == 0
    # Short: Ray's sockets live under it (a Unix socket path has ~100 characters at most).
    temp = Path(tempfile.mkdtemp(prefix="gmray", dir="/tmp"))
    port, client_port = free_port(), free_port()
    env = clean_env()
    # What an operator sets on a cluster's nodes: where the stores are. No PYTHONPATH.
    env["GRISTMILL_PROJECT"] = str(folder)
    env["GRISTMILL_STORE_URL"] = f"sqlite:///{folder / '.gristmill' / 'metadata.db'}"
    # Ray gives a ray:// client's own server 30 s to answer; on a loaded 2-core machine its
    # start (a fresh process importing Ray) took longer now and then.
    env["RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S"] = "120"
    head = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            f"--ray-client-server-port={client_port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed whole at teardown
    )
    try:
        wait_for_ray(f"127.0.0.1:{port}", head)
        yield RayCluster(
            f"127.0.0.1:{port}",
            f"ray://127.0.0.1:{client_port}",
            folder,
            logs=temp / "session_latest" / "logs",
        )
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            try:
                head.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        time.sleep(1)  # its raylet and workers follow the group
        try:
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


def ray_is_up(address: str) -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", f"import ray; ray.init(address={address!r}); print('up')"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    return probe.returncode == 0 and "up" in probe.stdout


def wait_for_ray(address: str, head: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if head.poll() is not None:
            error = head.stderr.read().decode()[-2000:] if head.stderr else ""
            pytest.fail(f"ray start exited {head.returncode}: {error}")
        if ray_is_up(address):
            return
        time.sleep(1)
    pytest.fail(f"the Ray head at {address} did not come up")


def _client_server_logs(cluster: RayCluster) -> str:
    """The tail of each Ray client server's error log: why a ray:// connection was refused
    (it failed now and then under load on 2 cores; the cause is in these files)."""
    tails = [
        f"\n--- {log.name}:\n{log.read_text(errors='replace')[-1500:]}"
        for log in sorted(cluster.logs.glob("ray_client_server*.err"))
    ]
    return "".join(tails)


def run_on(cluster: RayCluster, address: str, stack: str) -> dict:
    folder = cluster.folder
    registered = gristmill(
        "component",
        "register",
        "orchestrator",
        stack,
        "--flavor",
        "ray",
        f"address={address}",
        cwd=folder,
    )
    assert registered.returncode == 0, registered.stderr
    made = gristmill("stack", "register", stack, "-o", stack, "-a", "local", cwd=folder)
    assert made.returncode == 0, made.stderr
    command = ("run", "pipeline:training", "--stack", stack, "--json", "--no-cache")
    result = gristmill(*command, cwd=folder)
    if result.returncode != 0 and "Starting Ray client server failed" in result.stderr:
        # Ray's proxy starts a server process per ray:// client; on this loaded 2-core machine
        # that start failed about one CI run in four (its channel never came up, its log
        # empty). gristmill said so in one line; a user connects again, and so does the test.
        print("Ray's client server did not start; connecting again:", _client_server_logs(cluster))
        result = gristmill(*command, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr + _client_server_logs(cluster)
    run: dict = json.loads(result.stdout)
    return run


def test_the_quickstart_runs_on_an_external_ray_cluster(ray_cluster: RayCluster) -> None:
    worker_pids: set[int] = set()
    for address, stack in (
        (ray_cluster.address, "on_ray_gcs"),
        (ray_cluster.client_address, "on_ray_client"),
    ):
        run = run_on(ray_cluster, address, stack)
        assert run["status"] == "completed" and run["orchestrator"] == "ray"
        assert {s["status"] for s in run["steps"]} == {"completed"}
        assert run["metadata"]["accuracy"] > 0.9

        from fixtures.distributed import where_steps_ran
        from gristmill.store import open_store

        store = open_store(f"sqlite:///{ray_cluster.folder / '.gristmill' / 'metadata.db'}")
        orchestrating_pid, step_runs = where_steps_ran(store, run["id"])
        assert len(step_runs) == 4
        for step_run in step_runs:
            assert step_run.pid and step_run.pid != orchestrating_pid
            assert step_run.environment["pid"] == step_run.pid
            worker_pids.add(step_run.pid)
    # Each step ran in a worker process of the cluster: its raylet started it, and logged it.
    started = {path.name for path in ray_cluster.logs.glob("worker-*.out")}
    for pid in worker_pids:
        assert any(name.endswith(f"-{pid}.out") for name in started), (pid, sorted(started))

    # The cluster is still up after both runs: the orchestrator did not stop what it joined.
    assert ray_is_up(ray_cluster.address)
