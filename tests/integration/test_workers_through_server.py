"""Workers that record through a gristmill server (``gristmill server start`` in its own
process) instead of a database: the quickstart on a Dask stack (a LocalCluster whose worker
processes record every step through the server, each with its own host and pid), and a step on
the ``subprocess`` step operator. The orchestrating process has the token only from
``gristmill connect``'s file; its workers get it in their environment (never on a command line,
never printed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.store.rest import RestStore
from gristmill.testing.server import RunningServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]
EXAMPLE = TESTS.parent / "examples" / "quickstart"
GRISTMILL = Path(sys.executable).with_name("gristmill")


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with running_server() as started:
        yield started


def _connected_env(server: RunningServer, config: Path, **extra: str) -> dict[str, str]:
    """A user's shell after `gristmill connect` (the token in the connection file only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["XDG_CONFIG_HOME"] = str(config)
    env.update(extra)
    connect = subprocess.run(
        [GRISTMILL, "connect", server.url],
        env={**env, "GRISTMILL_API_TOKEN": server.token("editor")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert connect.returncode == 0, connect.stdout + connect.stderr
    return env


def _gristmill(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRISTMILL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_quickstart_on_a_dask_stack_records_through_the_server(
    server: RunningServer, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    env = _connected_env(server, tmp_path / "config")
    token = server.token("editor")
    for args in (
        ("component", "register", "artifact_store", "shared", "--flavor", "local",
         f"root={tmp_path / 'artifacts'}"),
        ("component", "register", "orchestrator", "dask", "--flavor", "dask", "n_workers=2"),
        ("stack", "register", "on_dask", "-o", "dask", "-a", "shared"),
    ):  # fmt: skip
        done = _gristmill(*args, cwd=folder, env=env)
        assert done.returncode == 0, done.stdout + done.stderr

    ran = _gristmill(
        "run", "pipeline:training", "--stack", "on_dask", "--json", cwd=folder, env=env
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert token not in ran.stdout + ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "completed" and run["orchestrator"] == "dask"
    assert run["metadata"]["accuracy"] > 0.9

    from fixtures.distributed import where_steps_ran

    # read back through the server
    store = RestStore(server.url, server.token("viewer"))
    orchestrating_pid, step_runs = where_steps_ran(store, run["id"])
    assert len(step_runs) == 4
    assert {s.status for s in step_runs} == {"completed"}
    worker_pids = set()
    for step_run in step_runs:  # each recorded by a Dask worker process, through the server
        assert step_run.host and step_run.pid and step_run.pid != orchestrating_pid
        assert step_run.environment["pid"] == step_run.pid
        assert step_run.environment["host"] == step_run.host
        worker_pids.add(step_run.pid)
    assert orchestrating_pid not in worker_pids
    # The server's own database holds it all: nothing was written beside the quickstart.
    assert not (folder / ".gristmill" / "metadata.db").exists()


def test_a_step_on_the_subprocess_operator_records_through_the_server(
    server: RunningServer, tmp_path: Path
) -> None:
    store = RestStore(server.url, server.token("editor"))
    try:
        store.save_component("artifact_store", "shared", "local", {"root": str(tmp_path / "a")})
        store.save_component("orchestrator", "local", "local", {})
        store.save_component("step_operator", "isolated", "subprocess", {})
        store.save_stack(
            "served",
            {"orchestrator": "local", "artifact_store": "shared", "step_operator": "isolated"},
        )
    finally:
        store.close()
    env = _connected_env(
        server,
        tmp_path / "config",
        GRISTMILL_STORE_URL=server.url,  # the URL in the environment, the token in the file
        GRISTMILL_STACK="served",
        PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    )
    script = "from fixtures.served import operated; run = operated(); print(run.id, run.status)"
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    token = server.token("editor")
    assert token not in ran.stdout + ran.stderr
    run_id, status = ran.stdout.split()[-2:]
    assert status == "completed"

    from gristmill import Client

    reader = RestStore(server.url, server.token("viewer"))
    try:
        client = Client(store=reader)
        run = client.get_run(run_id)
        facts = run.steps["worker_facts"].output().load()
        orchestrating_pid = reader.get_run(run_id).pid
        recorded = {s.name: s for s in reader.get_step_runs(run_id)}
    finally:
        reader.close()
    step = recorded["worker_facts"]
    assert step.status == "completed"
    assert step.pid == facts["pid"] != orchestrating_pid  # the operator's process recorded it
    assert step.environment["pid"] == facts["pid"]
    assert recorded["numbers"].status == "completed"  # in the orchestrating process
    assert facts["total"] == 6
    assert facts["store_url"] == server.url
    # The job had the token in its environment (this process had it only in the connection
    # file), and not on its command line.
    assert facts["token_in_environment"] is True
    assert token not in facts["cmdline"]
    assert "gristmill.execution step" in facts["cmdline"]
