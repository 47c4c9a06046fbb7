"""Runs handed to an engine (``submitted``), followed (``Run.wait``, ``runs wait``) and
stopped (``Run.stop``, ``runs stop``), without a cluster: a submitting orchestrator whose
engine is a detached Python process running the steps' tasks, and blocking local runs
stopped from another thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures.submitting import diamond, long_running
from gristmill import Client
from gristmill._plugins import register
from gristmill.cli.main import cli
from gristmill.errors import ConfigError, RunTimeoutError
from gristmill.execution import RunContext
from gristmill.orchestrators.base import SubmittingOrchestrator
from gristmill.orchestrators.tasks import worker_environment_variables
from gristmill.project import Project
from gristmill.store.base import SUBMITTED_STALE_AFTER_SECONDS

# The engine: one process, detached from ours, that runs each step's task in the plan's
# order (what a scheduler's tasks do, one after the other) and then finishes the run.
_ENGINE = """
import json, sys
from gristmill.orchestrators.tasks import finish_submitted_run, run_submitted_step
run_id, plan = sys.argv[1], json.loads(sys.argv[2])
ended = {}
for step_id, upstream in plan:
    ended[step_id] = run_submitted_step(run_id, step_id, upstream, *(ended[u] for u in upstream))
finish_submitted_run(run_id, *ended.values())
"""


class BackgroundOrchestrator(SubmittingOrchestrator):
    """A submitting orchestrator is ``_submit`` and nothing else."""

    flavor = "background"

    def _submit(self, run: RunContext) -> None:
        plan = [[s, sorted(run.plan.upstream(s))] for s in run.plan.order]
        subprocess.Popen(
            [sys.executable, "-c", _ENGINE, run.plan.run_id, json.dumps(plan)],
            env={**os.environ, **worker_environment_variables(run)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in our terminal does not reach it
        )


register("orchestrator", "background", BackgroundOrchestrator)


def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _detached(project: Project) -> RunContext:
    """A run recorded and handed over to no engine at all: nothing will ever run it."""
    stack = project.stack()
    run = RunContext(
        diamond.compile(n=2),
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="local",
    )
    run.start(detached=True)
    return run


def test_a_submitting_orchestrator_hands_the_run_over_and_wait_follows_it() -> None:
    started = time.monotonic()
    run = diamond.with_options(orchestrator="background")(n=4)
    assert time.monotonic() - started < 2  # did not wait for the steps (0.2 s each + imports)
    assert run.status == "submitted"
    assert run.wait(timeout=60, poll=0.1).status == "completed"
    # One side is a cache hit of the other: the engine runs them one after the other.
    assert {s.status for s in run.steps.values()} <= {"completed", "cached"}
    assert run.steps["total"].output().load() == 24
    for step_run in Client().store.get_step_runs(run.id):
        assert step_run.pid and step_run.pid != os.getpid()  # ran in the engine's process
    result = CliRunner().invoke(cli, ["runs", "wait", run.id])
    assert result.exit_code == 0, result.output


def test_told_to_wait_a_submitting_orchestrator_follows_the_run_to_its_end() -> None:
    run = diamond.with_options(orchestrator={"flavor": "background", "wait": True})(n=5)
    assert run.status == "completed"  # returned only once the engine's process finished it
    assert run.steps["total"].output().load() == 40


def test_a_submitted_run_is_not_reaped_before_its_steps_start_but_a_lost_one_is(
    project: Project,
) -> None:
    store = project.store()
    waiting = _detached(project)
    run_id = waiting.plan.run_id
    assert store.get_run(run_id).status == "submitted"
    assert store.get_run(run_id).pid is None
    now = time.time()
    assert store.reap_dead_runs(now + 1000) == []  # queued on its engine: alive
    assert store.get_run(run_id).status == "submitted"
    lost = now + SUBMITTED_STALE_AFTER_SECONDS + 10
    assert store.reap_dead_runs(lost) == [run_id]
    record = store.get_run(run_id)
    assert record.status == "failed" and "none of its steps ever started" in (record.error or "")

    # Once a worker takes a step the run is running, judged by heartbeats as ever.
    taken = _detached(project)
    step_run_id = taken.plan.steps["first"].step_run_id
    store.claim_step_run(step_run_id, at=time.time(), host="elsewhere", pid=1, environment={})
    assert store.get_run(taken.plan.run_id).status == "running"
    assert store.request_stop(taken.plan.run_id, at=time.time()) == "stopping"
    assert store.reap_dead_runs(time.time() + 60) == []  # its step beat a moment ago


def test_wait_gives_up_after_its_timeout_and_the_run_goes_on(project: Project) -> None:
    run_id = _detached(project).plan.run_id
    found = Client().get_run(run_id)
    started = time.monotonic()
    with pytest.raises(RunTimeoutError, match=r"still submitted after 0\.3s") as raised:
        found.wait(timeout=0.3, poll=0.05)
    assert 0.3 <= time.monotonic() - started < 2
    assert raised.value.run is not None and raised.value.run.status == "submitted"
    result = CliRunner().invoke(cli, ["runs", "wait", run_id, "--timeout", "0.2"])
    assert result.exit_code == 124, result.output
    assert Client().get_run(run_id).status == "submitted"


def test_stopping_a_handed_over_run_ends_what_never_ran(project: Project) -> None:
    run_id = _detached(project).plan.run_id
    result = CliRunner().invoke(cli, ["runs", "stop", run_id, "--grace", "1"])
    assert result.exit_code == 0, result.output
    stopped = Client().get_run(run_id)
    assert stopped.status == "stopped"
    assert {s.status for s in stopped.steps.values()} == {"stopped"}
    assert all("gristmill runs stop" in (s.error or "") for s in stopped.steps.values())
    again = CliRunner().invoke(cli, ["runs", "stop", run_id])
    assert again.exit_code == 0 and "already ended" in again.output
    result = CliRunner().invoke(cli, ["runs", "wait", run_id])
    assert result.exit_code == 130  # stopped


def test_a_handed_over_run_stops_on_its_engine_between_and_inside_steps(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    run = long_running.with_options(orchestrator="background")(marker=str(marker))
    _until(marker.exists, 30, "the slow step to start in the engine")
    started = time.monotonic()
    run.stop(grace=20)
    took = time.monotonic() - started
    assert run.status == "stopped"
    steps = run.steps
    assert steps["slow"].status == "stopped"
    assert "interrupted" in (steps["slow"].error or "")  # its worker stopped it, not `stop`
    assert steps["after"].status == "stopped" and steps["after"].started_at is None
    assert took < 10, took  # the step would have run 60 s


def test_a_local_run_stops_on_a_stop_request_from_elsewhere(tmp_path: Path) -> None:
    marker = tmp_path / "started"

    def stop_when_started() -> None:
        _until(marker.exists, 30, "the slow step to start")
        Client().get_run("latest").stop(grace=20)

    stopper = threading.Thread(target=stop_when_started, daemon=True)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="stop request") as raised:
        long_running.with_options(orchestrator="local")(marker=str(marker))
    took = time.monotonic() - started
    stopper.join(timeout=30)
    assert "interrupted in step 'slow'" in str(raised.value)
    run = Client().get_run("latest")
    assert run.status == "stopped"
    assert run.steps["slow"].status == "stopped"
    assert run.steps["after"].status == "stopped"
    assert took < 15, took


def test_a_run_that_ends_before_its_stop_is_read_is_not_disturbed() -> None:
    run = diamond.with_options(orchestrator="local_parallel")(n=2)
    assert run.status == "completed"
    assert run.stop().status == "completed"  # already ended: left as it is


def test_dask_hands_over_only_to_an_external_cluster() -> None:
    pytest.importorskip("distributed")
    from gristmill.orchestrators.dask import DaskOrchestrator

    with pytest.raises(ConfigError, match="address=tcp://HOST:8786"):
        DaskOrchestrator(wait=False)
    assert DaskOrchestrator(address="tcp://127.0.0.1:8786", wait=False).submits
    assert not DaskOrchestrator().submits
