"""A worker process attaches a run once and keeps it while the run lasts, and imports only the
code of the steps it is given, not the whole plan's."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.errors import NotFoundError
from gristmill.execution import RunContext, worker
from gristmill.project import Project

STEPS_A = """
from gristmill import step

@step
def make(n: int = 3) -> list:
    return list(range(n))
"""
STEPS_B = """
from gristmill import step

@step
def total(xs: list) -> int:
    return sum(xs)
"""
FLOW = """
from gristmill import pipeline
from gm_attach_a import make
from gm_attach_b import total

@pipeline
def flow(n: int = 3) -> None:
    total(make(n))
"""
MODULES = ("gm_attach_a", "gm_attach_b", "gm_attach_flow")


@pytest.fixture
def recorded(tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A run of ``flow`` recorded (not run) in the project, with none of its modules
    imported in this process: as a worker finds it."""
    code = tmp_path / "code"
    code.mkdir()
    for name, text in zip(MODULES, (STEPS_A, STEPS_B, FLOW), strict=True):
        (code / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("GRISTMILL_PROJECT", str(project.root))
    monkeypatch.setattr(worker, "_attached", {})
    from gm_attach_flow import flow  # type: ignore[import-not-found]

    stack = project.stack()
    run = RunContext(
        flow.compile(n=4),
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="test-remote",
    )
    run.start(detached=True)
    for name in MODULES:
        monkeypatch.delitem(sys.modules, name)
    yield run.plan.run_id
    for name in MODULES:
        sys.modules.pop(name, None)


def test_a_worker_imports_only_the_code_of_its_own_step(recorded: str) -> None:
    result = worker.run_step(recorded, "make")
    assert result.status == "completed"
    assert "gm_attach_a" in sys.modules
    assert "gm_attach_b" not in sys.modules  # the other step's module
    assert "gm_attach_flow" not in sys.modules  # nor the pipeline's


def test_a_worker_attaches_a_run_once_and_forgets_it_once_it_ended(
    recorded: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    attached: list[str] = []
    attach = RunContext.attach.__func__  # type: ignore[attr-defined]

    def counting(cls: type[RunContext], run_ref: str, **kwargs: object) -> RunContext:
        attached.append(run_ref)
        return attach(cls, run_ref, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(RunContext, "attach", classmethod(counting))
    assert worker.run_step(recorded, "make").status == "completed"
    assert worker.run_step(recorded, "total").status == "completed"  # reads make's output
    assert attached == [recorded]  # once for the run, not per step
    run = worker._attached[(project.store().url, recorded)]
    assert set(run.plan.steps) == {"make", "total"}  # compiled as they came
    with pytest.raises(NotFoundError, match=r"has no step 'totl'.*did you mean 'total'"):
        worker.run_step(recorded, "totl")

    assert RunContext.attach(recorded, project=project).finish() == "completed"
    worker._forget_ended_runs(project.store())  # what attaching the next run does first
    assert worker._attached == {}
