"""The Ray orchestrator on a real local Ray (2 CPUs, started once for the module): steps in
Ray worker processes, fully tracked, cached across stacks, resources as task options, a step
no node can hold refused, a Ray worker killed under a step (failed, or run again per the
step's retries, never by Ray behind its back)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

import ray

from fixtures.distributed import fanned, hanging, hanging_once, source
from gristmill import Client, Resources
from gristmill.errors import ConfigError
from gristmill.pipelines import RunFailedError, pipeline
from gristmill.project import Project

RAY = {"flavor": "ray"}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    # One Ray for the module (starting one takes seconds); the orchestrator uses it as it is
    # and sends the stores' variables with each task.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_steps_run_as_ray_tasks_fully_tracked_then_cached_on_another_stack(
    project: Project,
) -> None:
    run = fanned.with_options(orchestrator=RAY)(n=4)
    assert run.status == "completed"
    recorded = Client().get_run(run.id)
    assert recorded.orchestrator == "ray"
    steps = recorded.steps
    assert {s.status for s in steps.values()} == {"completed"}
    pids = steps["combine"].output().load()
    assert os.getpid() not in pids  # the steps ran in Ray's workers, not here
    assert len(pids) == 2  # the two sides ran at once, in two worker processes
    for step_run in project.store().get_step_runs(run.id):
        assert step_run.host and step_run.pid and step_run.pid != os.getpid()
        assert step_run.environment["python"] and step_run.environment["packages"]["count"] > 0
        assert step_run.heartbeat_at is not None
    assert steps["left"].output().load()["total"] == 6

    rerun = fanned.with_options(orchestrator="local")(n=4)  # same artifact store, other stack
    assert {s.status for s in Client().get_run(rerun.id).steps.values()} == {"cached"}


def test_a_step_asking_more_than_any_node_offers_is_refused_before_it_runs() -> None:
    @pipeline
    def greedy() -> None:
        source.with_options(resources={"gpu": 1})()

    with pytest.raises(ConfigError, match="no Ray node offers") as refused:
        greedy.with_options(orchestrator=RAY)()
    assert "step 'source'" in str(refused.value)
    (run,) = Client().list_runs()
    assert run.status == "failed"
    assert {s.status for s in run.steps.values()} == {"stopped"}  # nothing ran


def test_resources_become_task_options() -> None:
    from gristmill.orchestrators.ray import ray_options

    assert ray_options(None) == {"num_cpus": 1.0}
    asked = Resources(cpu=2, memory="1GiB", gpu=1)
    assert ray_options(asked) == {"num_cpus": 2.0, "num_gpus": 1.0, "memory": float(2**30)}


def kill_first_writer(pid_file: Path) -> threading.Thread:
    """SIGKILL the process whose pid is the first line of ``pid_file``, once it is written."""

    def kill() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = pid_file.read_text().split() if pid_file.exists() else []
            if lines:
                os.kill(int(lines[0]), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    return killer


def test_a_ray_worker_killed_mid_step_fails_the_step_and_keeps_what_finished(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    kill_first_writer(pid_file)
    started = time.monotonic()
    with pytest.raises(RunFailedError) as failed:
        hanging.with_options(orchestrator=RAY)(pid_file=str(pid_file))
    assert time.monotonic() - started < 50  # not the step's 60 s sleep
    recorded = Client().get_run(failed.value.run.id)
    assert recorded.status == "failed"
    assert recorded.steps["source"].status == "completed"
    assert recorded.steps["source"].output().load() == [0, 1, 2]  # nothing finished is lost
    hang = recorded.steps["hang"]
    assert hang.status == "failed"
    assert "the Ray worker running it died" in (hang.error or "")
    assert "WorkerCrashedError" in (hang.error or "")
    time.sleep(1)  # Ray would have started it again by now if its own retries were on
    assert len(pid_file.read_text().split()) == 1


def test_a_ray_worker_killed_mid_step_runs_the_step_again_per_its_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid_file = tmp_path / "pid"
    kill_first_writer(pid_file)
    run = hanging_once.with_options(orchestrator=RAY)(pid_file=str(pid_file))
    assert run.status == "completed"
    recorded = Client().get_run(run.id)
    assert recorded.steps["hang_once"].status == "completed"
    assert recorded.steps["hang_once"].output().load() == 3
    first, second = pid_file.read_text().split()  # two attempts: the killed one and a new one
    assert first != second
    assert "running it again" in caplog.text  # said, not silent
