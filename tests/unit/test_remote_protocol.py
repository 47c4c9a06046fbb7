"""The remote execution protocol without a cluster: step heartbeats keep a run alive, a worker
records where it ran, resources are an option outside the cache key."""

from __future__ import annotations

import logging
import time

import pytest

from fixtures.pipelines import summing
from gristmill import Client, Resources
from gristmill.errors import ConfigError, PipelineDefinitionError
from gristmill.execution import RunContext
from gristmill.execution.worker import launch_in_worker
from gristmill.options import RunConfig
from gristmill.project import Project


def started(project: Project) -> RunContext:
    stack = project.stack()
    run = RunContext(
        summing.compile(n=3),
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="test-remote",
    )
    run.start(detached=True)  # no pid, no heartbeat of its own: lives by its steps' beats
    return run


def test_a_run_whose_steps_beat_is_not_reaped_and_one_whose_steps_are_silent_is(
    project: Project,
) -> None:
    run = started(project)
    store = project.store()
    step_run_id = run.plan.steps["numbers"].step_run_id
    later = time.time() + 1000  # the run's own heartbeat is long stale by then
    store.claim_step_run(step_run_id, at=later - 10, host="elsewhere", pid=1, environment={})
    assert store.reap_dead_runs(later) == []
    assert store.get_run(run.plan.run_id).status == "running"
    assert store.reap_dead_runs(later + 1000) == [run.plan.run_id]  # the beats stopped


def test_a_worker_records_where_it_ran_and_finish_counts_its_steps(project: Project) -> None:
    run = started(project)
    for step_id in run.plan.order:
        result = launch_in_worker(run, step_id)
        assert result.status == "completed"
    assert run.finish() == "completed"
    for step_run in project.store().get_step_runs(run.plan.run_id):
        assert step_run.host and step_run.pid
        assert {"python", "platform", "packages", "gristmill"} <= set(step_run.environment)


def test_resources_are_an_option_outside_the_cache_key(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.orchestrators import base

    monkeypatch.setattr(base, "_ignored_resources", set())  # said once per process
    first = summing(n=4)
    config = RunConfig.from_dict({"steps": {"total": {"resources": {"cpu": 2, "memory": "1GiB"}}}})
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        run = summing.with_options(config=config)(n=4)
    assert Client().get_run(run.id).steps["total"].status == "cached"  # same key as `first`
    assert first.status == "completed"
    assert "ignores their resources" in caplog.text
    with pytest.raises(PipelineDefinitionError, match="not a size"):
        Resources(memory="lots")
    with pytest.raises(ConfigError, match=r"resources\.cores: unknown option"):
        RunConfig.from_dict({"steps": {"total": {"resources": {"cores": 2}}}})
