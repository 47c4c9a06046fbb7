"""The Dask orchestrator on a real ``distributed`` LocalCluster (2 worker processes, 1 thread
each): steps in other processes, fully tracked, cached across stacks, a killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from fixtures.distributed import fanned, hanging
from gristmill import Client
from gristmill.errors import ConfigError
from gristmill.pipelines import RunFailedError

DASK = {"flavor": "dask", "n_workers": 2, "threads_per_worker": 1}


def test_steps_run_in_worker_processes_fully_tracked_then_cached_on_another_stack() -> None:
    run = fanned.with_options(orchestrator=DASK)(n=4)
    assert run.status == "completed"
    recorded = Client().get_run(run.id)
    assert recorded.orchestrator == "dask"
    steps = recorded.steps
    assert {s.status for s in steps.values()} == {"completed"}
    pids = steps["combine"].output().load()
    assert os.getpid() not in pids  # the steps ran in the workers, not here
    assert len(pids) == 2  # the two sides ran at once, in the two worker processes
    from gristmill.project import find_project

    for step_run in find_project().store().get_step_runs(run.id):
        assert step_run.host and step_run.pid and step_run.pid != os.getpid()
        assert step_run.environment["python"] and step_run.environment["packages"]["count"] > 0
        assert step_run.heartbeat_at is not None
    left = steps["left"].output().load()
    assert left["total"] == 6

    rerun = fanned.with_options(orchestrator="local")(n=4)  # same artifact store, other stack
    assert {s.status for s in Client().get_run(rerun.id).steps.values()} == {"cached"}


def test_a_worker_killed_mid_step_fails_the_step_and_keeps_what_finished(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def kill_when_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pid_file.exists() and pid_file.read_text():
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    started = time.monotonic()
    with pytest.raises(RunFailedError) as failed:
        hanging.with_options(orchestrator=DASK)(pid_file=str(pid_file))
    assert time.monotonic() - started < 50  # not the step's 60 s sleep
    recorded = Client().get_run(failed.value.run.id)
    assert recorded.status == "failed"
    assert recorded.steps["source"].status == "completed"
    assert recorded.steps["source"].output().load() == [0, 1, 2]
    assert recorded.steps["hang"].status == "failed"
    assert "worker" in (recorded.steps["hang"].error or "")


def test_a_step_asking_more_than_any_worker_offers_is_refused_before_it_runs() -> None:
    from fixtures.distributed import source
    from gristmill.pipelines import pipeline

    @pipeline
    def greedy() -> None:
        source.with_options(resources={"gpu": 1})()

    with pytest.raises(ConfigError, match="no Dask worker offers"):
        greedy.with_options(orchestrator=DASK)()


def test_a_worker_without_store_settings_fails_clearly_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.execution.worker import run_step

    monkeypatch.delenv("GRISTMILL_STORE_URL", raising=False)
    monkeypatch.delenv("GRISTMILL_PROJECT", raising=False)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(ConfigError, match="GRISTMILL_STORE_URL"):
        run_step("any-run", "any-step")
    assert list(empty.iterdir()) == []  # no .gristmill/, no SQLite file
