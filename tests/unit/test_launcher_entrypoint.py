"""`python -m gristmill.execution --run R --step S`: how remote orchestrators run a step. The
same launcher, in another process, against the same stores."""

import os
import subprocess
import sys
from pathlib import Path

from fixtures.pipelines import splitting
from gristmill.execution import RunContext
from gristmill.project import Project

TESTS = Path(__file__).parents[1]


def launch(run_id: str, *steps: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "gristmill.execution", "--run", run_id]
    for step_id in steps:
        args += ["--step", step_id]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def test_steps_launched_in_other_processes_make_one_tracked_run(project: Project) -> None:
    plan = splitting.compile(n=6)
    stack = project.stack()
    run = RunContext(
        plan,
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="test-remote",
    )
    run.start()
    assert launch(plan.run_id, "numbers").returncode == 0
    assert launch(plan.run_name, "split", "sum_evens").returncode == 0  # by name, several steps
    result = launch(plan.run_id, "sum_odds")
    assert result.returncode == 0, result.stderr
    assert run.finish() == "completed"  # the statuses recorded by the other processes count

    from gristmill import Client

    recorded = Client().get_run(plan.run_id)
    assert {s.status for s in recorded.steps.values()} == {"completed"}
    assert recorded.steps["sum_evens"].output().load() == 6.0
    assert recorded.steps["sum_odds"].output().load() == 9.0
    # lineage crosses the process boundary
    upstream = {av.name for av in recorded.steps["sum_odds"].output().upstream()}
    assert upstream == {"odds", "splitting.numbers.output"}


def test_a_failing_remote_step_exits_1(project: Project) -> None:
    plan = splitting.compile(n=3)
    stack = project.stack()
    run = RunContext(
        plan,
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="test-remote",
    )
    run.start()
    missing_input = launch(plan.run_id, "split")  # its upstream step never ran
    assert missing_input.returncode == 1
    assert "has not completed" in missing_input.stderr
    assert "Traceback" not in missing_input.stderr
    unknown = launch(plan.run_id, "nope")
    assert unknown.returncode == 2
    assert "has no step 'nope'" in unknown.stderr
    # the step launched without its input failed (recorded, not left pending); the rest stopped
    assert run.finish() == "failed"
    statuses = {s.name: s.status for s in project.store().get_step_runs(plan.run_id)}
    assert statuses["split"] == "failed"
    assert set(statuses.values()) == {"failed", "stopped"}
