"""The quickstart runs unchanged on a Dask stack and on a Ray stack (only the stack switched,
with the CLI as a user would), fully tracked with where each step really ran; a rerun on the
default stack, with the same artifact store, is all cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.project import Project

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart"
pytestmark = pytest.mark.integration


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("engine", "package", "settings"),
    [("dask", "distributed", "n_workers=2"), ("ray", "ray", "num_cpus=2")],
)
def test_the_quickstart_runs_unchanged_on_a_distributed_stack(
    tmp_path: Path, project: Project, engine: str, package: str, settings: str
) -> None:
    pytest.importorskip(package)
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    assert gristmill("init", cwd=folder).returncode == 0
    stacks = gristmill("stack", "list", cwd=folder).stdout
    assert "artifact_store=local" in stacks  # the default stack's artifact store is 'local'
    registered = gristmill(
        "component", "register", "orchestrator", engine, "--flavor", engine, settings, cwd=folder
    )
    assert registered.returncode == 0, registered.stderr
    stack = gristmill("stack", "register", f"on_{engine}", "-o", engine, "-a", "local", cwd=folder)
    assert stack.returncode == 0, stack.stderr

    first = gristmill("run", "pipeline:training", "--stack", f"on_{engine}", "--json", cwd=folder)
    assert first.returncode == 0, first.stdout + first.stderr
    run = json.loads(first.stdout)
    assert run["status"] == "completed" and run["orchestrator"] == engine
    assert {s["status"] for s in run["steps"]} == {"completed"}
    assert run["metadata"]["accuracy"] > 0.9

    from fixtures.distributed import where_steps_ran
    from gristmill.store import open_store

    store = open_store(f"sqlite:///{folder / '.gristmill' / 'metadata.db'}")
    orchestrating_pid, step_runs = where_steps_ran(store, run["id"])
    assert len(step_runs) == 4
    for step_run in step_runs:  # each step says where it really ran: a worker, not the CLI
        assert step_run.host and step_run.pid and step_run.pid != orchestrating_pid
        environment = step_run.environment
        assert environment["pid"] == step_run.pid and environment["host"] == step_run.host
        assert environment["python"] and environment["packages"]["count"] > 0

    rerun = gristmill("run", "pipeline:training", "--json", cwd=folder)  # the default stack
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    again = json.loads(rerun.stdout)
    assert again["orchestrator"] == "local"
    assert {s["status"] for s in again["steps"]} == {"cached"}
