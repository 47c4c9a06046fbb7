"""Stop requests in ``python -m gristmill.execution step``, the verb that engines running steps
themselves (Airflow, Kubeflow, Argo) call: a run is started with the ``start`` verb, its steps
run in real subprocesses, and ``gristmill runs stop`` comes from another process. A step that
runs is interrupted within a couple of seconds and recorded ``stopped``; a step asked to start
after the request is recorded ``stopped`` without running; both exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fixtures.submitting import long_running
from gristmill.project import Project
from gristmill.store import Status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }


def _verb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill.execution", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


def _step_process(run_id: str, step_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gristmill.execution", "step", "--run", run_id, step_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _started_run(tmp_path: Path, marker: Path) -> str:
    """A run of ``long_running`` recorded by the ``start`` verb, as a scheduler starts one,
    its first step run by the ``step`` verb."""
    long_running(marker=str(tmp_path / "stored"), seconds=0)  # stores the pipeline
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": {"marker": str(marker), "seconds": 60}}))
    started = _verb("start", "long_running", "--config", str(config))
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    first = _verb("step", "--run", run_id, "first")
    assert first.returncode == 0, first.stderr
    return run_id


def test_runs_stop_from_another_process_stops_the_step_verb(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    run_id = _started_run(tmp_path, marker)
    worker = _step_process(run_id, "slow")
    try:
        _until(marker.exists, 60, "the slow step to start")
        requested = time.monotonic()
        stop = subprocess.run(
            [BIN / "gristmill", "runs", "stop", run_id, "--grace", "30"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        _, stderr = worker.communicate(timeout=60)
        took = time.monotonic() - requested
    finally:
        if worker.poll() is None:
            worker.kill()
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert worker.returncode == 130, stderr
    assert "step 'slow' stopped" in stderr
    assert "Traceback" not in stderr
    assert took < 15, took  # the watch reads the run about once a second, not the step's 60 s
    print(f"`runs stop` to the step verb's exit: {took:.2f}s")

    store = project.store()
    steps = {s.name: s for s in store.get_step_runs(run_id)}
    assert steps["first"].status in Status.SUCCEEDED
    assert steps["slow"].status == Status.STOPPED
    assert steps["slow"].pid == int(marker.read_text())  # recorded by the worker that ran it
    assert steps["slow"].ended_at is not None
    assert store.get_run(run_id).status == Status.STOPPED

    # Asked to start after the request: recorded stopped without running, exit 130.
    after = _verb("step", "--run", run_id, "after")
    assert after.returncode == 130, after.stderr
    assert "stop request" in after.stderr
    recorded = store.get_step_run(steps["after"].id)
    assert recorded.status == Status.STOPPED
    assert recorded.started_at is None and recorded.pid is None
    assert "stop request" in (recorded.error or "")

    # The engine's last task leaves the stopped run as it is.
    finish = _verb("finish", "--run", run_id)
    assert finish.returncode == 130, finish.stderr
    assert finish.stdout.strip() == Status.STOPPED
    assert store.get_run(run_id).status == Status.STOPPED


def test_a_step_of_a_run_asked_to_stop_is_recorded_stopped_without_running(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    run_id = _started_run(tmp_path, marker)
    store = project.store()
    # The request recorded, the run not ended yet (its engine ends it): `stopping`.
    assert store.request_stop(run_id, at=time.time()) == Status.STOPPING
    result = _verb("step", "--run", run_id, "slow", "after")
    assert result.returncode == 130, result.stderr
    assert not marker.exists()  # the step's code never ran
    steps = {s.name: s for s in store.get_step_runs(run_id)}
    assert steps["slow"].status == steps["after"].status == Status.STOPPED
    assert steps["slow"].started_at is None
    finish = _verb("finish", "--run", run_id)
    assert finish.returncode == 130, finish.stderr
    assert store.get_run(run_id).status == Status.STOPPED


def test_sigterm_from_the_engine_records_the_step_stopped(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    run_id = _started_run(tmp_path, marker)
    worker = _step_process(run_id, "slow")
    try:
        _until(marker.exists, 60, "the slow step to start")
        worker.send_signal(signal.SIGTERM)  # what Airflow or Kubernetes send a task they kill
        _, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 130, stderr
    step = next(s for s in project.store().get_step_runs(run_id) if s.name == "slow")
    assert step.status == Status.STOPPED
    assert "interrupted" in (step.error or "")
