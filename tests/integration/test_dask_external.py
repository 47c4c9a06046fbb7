"""The Dask orchestrator against an external cluster: a real ``dask scheduler`` and ``dask
worker`` (2 processes, 1 thread each) started on loopback as subprocesses. Blocking runs
against its address, and runs handed to it (``wait: false``) that return at once, are
followed with ``runs wait`` / ``Run.wait`` and stopped with ``runs stop`` / Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from click.testing import CliRunner

from fixtures.submitting import (
    diamond,
    failing,
    long_running,
    scheduler_stimuli,
    scheduler_task_keys,
)
from gristmill import Client
from gristmill.cli.main import cli
from gristmill.project import Project
from gristmill.testing import temporary_project
from gristmill.testing.services import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Cluster:
    address: str
    root: Path

    def orchestrator(self, *, wait: bool) -> dict[str, object]:
        return {"flavor": "dask", "address": self.address, "wait": wait}


def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("dask-external")
    root = base / "project"
    Project(root).init()
    env = {
        **os.environ,
        # What an operator sets on a cluster's workers: where the stores are, and the code.
        "GRISTMILL_PROJECT": str(root),
        "GRISTMILL_CACHE_DIR": str(root / ".gristmill" / "cache"),
        "XDG_CONFIG_HOME": str(root / ".gristmill" / "user-config"),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("GRISTMILL_STORE_URL", None)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (base / "cluster.log").open("w")
    scheduler = subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=base,
    )
    workers = subprocess.Popen(
        [
            BIN / "dask",
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--local-directory",
            str(base / "workers"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=base,
    )
    try:
        from distributed import Client as DaskClient

        deadline = time.monotonic() + 60
        while True:
            try:
                with DaskClient(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Cluster(address, root)
    finally:
        for process in (workers, scheduler):
            process.terminate()
        for process in (workers, scheduler):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture(autouse=True)
def project(cluster: Cluster) -> Iterator[Project]:
    """Every test records into the project the cluster's workers were told about."""
    with temporary_project(cluster.root) as project:
        yield project


def _scheduler_tasks(cluster: Cluster) -> list[str]:
    from distributed import Client as DaskClient

    with DaskClient(cluster.address, timeout=10) as client:
        # By reference: the scheduler imports it as the workers import the steps.
        return [str(k) for k in client.run_on_scheduler(scheduler_task_keys)]


def test_a_blocking_run_on_an_external_cluster_runs_in_its_workers(cluster: Cluster) -> None:
    # No cache: `left` and `right` are the same step on the same input, so one started after
    # the other ended would be `cached` instead of run.
    run = diamond.with_options(orchestrator=cluster.orchestrator(wait=True), enable_cache=False)(
        n=3
    )
    assert run.status == "completed"
    steps = Client().get_run(run.id).steps
    assert {s.status for s in steps.values()} == {"completed"}
    assert steps["total"].output().load() == 12
    from gristmill.project import find_project

    recorded = find_project().store().get_step_runs(run.id)
    assert all(s.pid and s.pid != os.getpid() for s in recorded)  # in the cluster's workers


def test_a_submitted_run_returns_at_once_and_is_followed_to_its_end(cluster: Cluster) -> None:
    started = time.monotonic()
    run = diamond.with_options(orchestrator=cluster.orchestrator(wait=False))(n=4)
    handed_over = time.monotonic() - started
    assert run.status == "submitted"  # the call returned before any step ran
    assert Client().get_run(run.id).steps["total"].status == "pending"
    assert run.wait(timeout=60).status == "completed"
    steps = run.steps
    assert {s.status for s in steps.values()} <= {"completed", "cached"}  # `first`: cached
    assert steps["total"].status == "completed"
    assert steps["total"].output().load() == 24  # both doubled sides of 0..3
    # The DAG was honoured on the cluster: total started after both sides ended.
    assert steps["total"].started_at >= max(steps["left"].ended_at, steps["right"].ended_at)
    assert Client().get_run(run.id).environment  # finished by the cluster's last task
    # `runs wait` on an ended run: at once, exit status 0.
    result = CliRunner().invoke(cli, ["runs", "wait", run.id, "--json"])
    assert result.exit_code == 0, result.output
    print(f"handed over in {handed_over:.2f}s")


def test_a_failed_step_fails_the_submitted_run_and_runs_wait_exits_1(cluster: Cluster) -> None:
    run = failing.with_options(orchestrator=cluster.orchestrator(wait=False))()
    result = CliRunner().invoke(cli, ["runs", "wait", run.id, "--timeout", "60"])
    assert result.exit_code == 1, result.output
    steps = run.refresh().steps
    assert run.status == "failed"
    assert steps["boom"].status == "failed" and "boom!" in (steps["boom"].error or "")
    assert steps["after"].status == "stopped"  # its upstream failed: never started
    assert steps["after"].started_at is None


def test_runs_stop_cancels_the_tasks_and_stops_the_running_step(
    cluster: Cluster, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    run = long_running.with_options(orchestrator=cluster.orchestrator(wait=False))(
        marker=str(marker)
    )
    _until(marker.exists, 60, "the slow step to start on a worker")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["runs", "stop", run.id])
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    steps = run.refresh().steps
    assert run.status == "stopped"
    assert steps["first"].status in ("completed", "cached")
    assert steps["slow"].status == "stopped"  # interrupted on its worker
    assert "interrupted" in (steps["slow"].error or "")
    assert steps["after"].status == "stopped" and steps["after"].started_at is None
    assert took < 15, took  # not the step's 60 s
    # The engine was told: the tasks still waiting were cancelled on the scheduler.
    from distributed import Client as DaskClient

    from gristmill.orchestrators.dask import submitted_key

    with DaskClient(cluster.address, timeout=10) as client:
        stimuli = client.run_on_scheduler(
            scheduler_stimuli, key=submitted_key(run.id, "after")
        ) + client.run_on_scheduler(scheduler_stimuli, key=submitted_key(run.id, None))
    assert any(s.startswith("cancel-key") for s in stimuli), stimuli
    # Nothing of the run is left on the scheduler.
    _until(
        lambda: not [k for k in _scheduler_tasks(cluster) if run.id in k],
        20,
        "the run's tasks to leave the scheduler",
    )
    print(f"stopped in {took:.2f}s")


def test_ctrl_c_during_runs_wait_stops_the_run(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    run = long_running.with_options(orchestrator=cluster.orchestrator(wait=False))(
        marker=str(marker)
    )
    waiting = subprocess.Popen(
        [BIN / "gristmill", "runs", "wait", run.id],
        env={**os.environ, "GRISTMILL_PROJECT": str(cluster.root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _until(marker.exists, 60, "the slow step to start on a worker")
        assert waiting.stdout is not None
        first_line = waiting.stdout.readline()  # `runs wait` is in its loop once it said so
        assert "Waiting for run" in first_line, first_line
        waiting.send_signal(signal.SIGINT)
        output, _ = waiting.communicate(timeout=60)
        output = first_line + output
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 130, output
    run.refresh()
    assert run.status == "stopped", output
    assert run.steps["slow"].status == "stopped"
    assert run.steps["after"].status == "stopped"


def test_a_blocking_run_on_the_cluster_stops_on_a_stop_request(
    cluster: Cluster, tmp_path: Path
) -> None:
    import threading

    marker = tmp_path / "started"

    def stop_when_started() -> None:
        _until(marker.exists, 60, "the slow step to start on a worker")
        Client().get_run("latest").stop(grace=20)

    stopper = threading.Thread(target=stop_when_started, daemon=True)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="stop request"):
        long_running.with_options(orchestrator=cluster.orchestrator(wait=True))(marker=str(marker))
    stopper.join(timeout=30)
    assert time.monotonic() - started < 30
    run = Client().get_run("latest")
    assert run.status == "stopped"
    assert run.steps["slow"].status == "stopped"
    assert run.steps["after"].status == "stopped" and run.steps["after"].started_at is None
