"""A step on a step operator (``subprocess``) inside a pipeline that the ``local_parallel`` or
the Dask orchestrator runs: the orchestrator places the step (a thread, a Dask worker), the
operator runs it in a process of its own, and the run is tracked as with the local one."""

from __future__ import annotations

import os
from typing import Any

import pytest
from test_step_operators import on_stack

from fixtures.operated_fan import one_side_breaks, two_sides
from gristmill import Client
from gristmill.pipelines import RunFailedError
from gristmill.project import Project

DASK = {"flavor": "dask", "n_workers": 2, "threads_per_worker": 1}


@pytest.fixture(
    params=[
        pytest.param({"flavor": "local_parallel", "max_workers": 4}, id="local_parallel"),
        pytest.param(DASK, id="dask"),
    ]
)
def orchestrator(request: pytest.FixtureRequest, project: Project) -> dict[str, Any]:
    """The orchestrator to run with, on a stack whose step operator 'elsewhere' is a
    ``subprocess`` one."""
    if request.param["flavor"] == "dask":
        pytest.importorskip("distributed")
    on_stack("elsewhere", "subprocess")
    chosen: dict[str, Any] = request.param
    return chosen


def test_operator_steps_run_in_their_own_processes_under_the_orchestrator(
    project: Project, orchestrator: dict[str, Any]
) -> None:
    run = two_sides.with_options(orchestrator=orchestrator)(n=3)
    assert run.status == "completed"
    recorded = Client().get_run(run.id)
    assert recorded.orchestrator == orchestrator["flavor"]
    assert {s.status for s in recorded.steps.values()} == {"completed"}
    gathered = recorded.steps["gather"].output().load()
    a, b = gathered["sides"]
    assert (a["name"], a["n"], b["name"], b["n"]) == ("a", 3, "b", 4)
    here = os.getpid()
    # Each side in a process of its own, started by the operator, not the orchestrator's.
    assert len({a["pid"], b["pid"], here}) == 3
    # The two sides ran at once: each started before the other ended (a start-time window
    # was too tight for a loaded 2-core machine starting two processes through Dask).
    assert max(a["started"], b["started"]) < min(a["at"], b["at"])
    step_runs = {s.name: s for s in project.store().get_step_runs(run.id)}
    for name, side in (("a", a), ("b", b)):
        assert step_runs[name].pid == side["pid"]  # recorded by the operator's worker
        assert step_runs[name].environment["pid"] == side["pid"]
    if orchestrator["flavor"] == "dask":
        # The operator was driven from a Dask worker process, which started the job.
        assert a["ppid"] != here and b["ppid"] != here
        assert gathered["pid"] != here
    else:  # threads of this process drove the operator; the non-operator step ran here
        assert a["ppid"] == here and b["ppid"] == here
        assert gathered["pid"] == here


def test_an_operator_step_that_fails_fails_the_run_and_keeps_the_other_side(
    orchestrator: dict[str, Any],
) -> None:
    with pytest.raises(RunFailedError) as failed:
        one_side_breaks.with_options(orchestrator=orchestrator)(n=3)
    recorded = Client().get_run(failed.value.run.id)
    assert recorded.status == "failed"
    assert recorded.steps["a"].status == "completed"
    assert recorded.steps["a"].output().load()["n"] == 3
    broken = recorded.steps["side_breaks"]
    assert broken.status == "failed"
    assert "side 3 broken on purpose" in (broken.error or "")
    assert recorded.steps["gather"].status == "stopped"
