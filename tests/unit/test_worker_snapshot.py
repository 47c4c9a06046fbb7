"""A worker on a host without the project's code: ``python -m gristmill.execution step`` imports
the step's module from the run's code snapshot (recorded when the run starts, fetched from the
artifact store and verified); with the working copy there and unchanged it uses that; without
either it fails with a clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from gristmill import Client
from gristmill.project import Project

STEPS = textwrap.dedent(
    """
    from gristmill import pipeline, step

    @step
    def numbers(n: int = 3) -> list:
        return list(range(n))

    @step
    def where(xs: list) -> dict:
        return {"file": __file__, "total": sum(xs), "version": VERSION}

    VERSION = "as started"

    @pipeline
    def located(n: int = 3) -> None:
        where(numbers(n))
    """
)

START = textwrap.dedent(
    """
    import sys
    from gristmill.execution import RunContext
    from gristmill.project import find_project
    import located_steps
    if "--no-snapshot" in sys.argv:  # as a run started by a gristmill that recorded none
        import gristmill.execution.run as run_module
        run_module.record_code = lambda store: {}
    project = find_project()
    stack = project.stack()
    plan = located_steps.located.compile(n=4)
    run = RunContext(plan, store=project.store(), artifact_store=project.artifact_store(stack),
                     stack=stack, orchestrator="test-remote")
    run.start(detached=True)
    print(plan.run_id)
    """
)


def worker_env(project: Project, tmp_path: Path) -> dict[str, str]:
    """Only what a worker on another host would have: the stores' settings, no PYTHONPATH."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "GRISTMILL_STORE_URL": project.store().url,
        "GRISTMILL_PROJECT": str(project.root),
    }


def start_run(project: Project, tmp_path: Path, *flags: str) -> tuple[str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "located_steps.py").write_text(STEPS, encoding="utf-8")
    started = subprocess.run(
        [sys.executable, "-c", START, *flags],
        cwd=code,
        env=worker_env(project, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    return started.stdout.strip().splitlines()[-1], code


def step(
    project: Project, tmp_path: Path, run_id: str, step_id: str, *, cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill.execution", "step", "--run", run_id, step_id],
        cwd=cwd,
        env=worker_env(project, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_worker_without_the_working_copy_imports_the_step_from_the_snapshot(
    project: Project, tmp_path: Path
) -> None:
    run_id, code = start_run(project, tmp_path)
    recorded = Client().get_run(run_id)
    assert recorded.environment["code"]["snapshot"]  # recorded when the run started
    shutil.rmtree(code)  # the project's code is not on the worker's host
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for step_id in ("numbers", "where"):
        result = step(project, tmp_path, run_id, step_id, cwd=elsewhere)
        assert result.returncode == 0, result.stderr
    steps = Client().get_run(run_id).steps
    assert {s.status for s in steps.values()} == {"completed"}
    output = steps["where"].output().load()
    assert output["total"] == 6
    snapshots = project.directory / "snapshots"
    assert Path(output["file"]).is_relative_to(snapshots)  # imported from the snapshot
    assert Path(output["file"]).read_text(encoding="utf-8") == STEPS


def test_a_worker_with_the_working_copy_unchanged_uses_it_and_a_changed_one_the_snapshot(
    project: Project, tmp_path: Path
) -> None:
    run_id, code = start_run(project, tmp_path)
    result = step(project, tmp_path, run_id, "numbers", cwd=code)
    assert result.returncode == 0, result.stderr
    assert not (project.directory / "snapshots").exists()  # nothing fetched: not needed
    numbers = Client().get_run(run_id).steps["numbers"]
    assert numbers.status == "completed"

    # The working copy changed since the run started: the step runs the run's code.
    source = code / "located_steps.py"
    source.write_text(STEPS.replace('"as started"', '"edited later"'), encoding="utf-8")
    result = step(project, tmp_path, run_id, "where", cwd=code)
    assert result.returncode == 0, result.stderr
    output = Client().get_run(run_id).steps["where"].output().load()
    assert output["version"] == "as started"
    assert Path(output["file"]).is_relative_to(project.directory / "snapshots")


def test_without_a_snapshot_or_the_code_a_worker_fails_clearly(
    project: Project, tmp_path: Path
) -> None:
    run_id, code = start_run(project, tmp_path, "--no-snapshot")
    assert "code" not in Client().get_run(run_id).environment
    shutil.rmtree(code)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = step(project, tmp_path, run_id, "numbers", cwd=elsewhere)
    assert result.returncode == 1
    assert "step 'numbers' of run located-" in result.stderr
    assert "module 'located_steps' cannot be imported on this worker" in result.stderr
    assert "recorded no code snapshot" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_snapshot_changed_in_the_artifact_store_is_refused(
    project: Project, tmp_path: Path
) -> None:
    run_id, code = start_run(project, tmp_path)
    shutil.rmtree(code)
    snapshot = Client().get_run(run_id).environment["code"]["snapshot"]
    artifact_store = project.artifact_store(project.stack())
    manifest = f"code/snapshots/{snapshot}.json"
    path = Path(artifact_store.root) / manifest
    path.write_bytes(path.read_bytes().replace(b"{", b"{ ", 1))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = step(project, tmp_path, run_id, "numbers", cwd=elsewhere)
    assert result.returncode == 1
    assert "does not match the hash the run recorded" in result.stderr
    assert not (project.directory / "snapshots").exists()  # nothing written or imported
    path.unlink()
    result = step(project, tmp_path, run_id, "numbers", cwd=elsewhere)
    assert result.returncode == 1
    assert "cannot read the run's code snapshot manifest" in result.stderr
