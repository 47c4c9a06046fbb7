"""Ctrl-C during a step: a real SIGINT sent to `gristmill run` and to `python pipeline.py`,
on both local orchestrators. The step ends stopped (not failed), the steps that did not run
stopped, the run stopped; the console says where the step's code was; the exit is 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill import Client
from gristmill.errors import NotFoundError
from gristmill.project import Project

PIPELINE = """\
import logging
import sys
import time

from gristmill import pipeline, step


@step
def prepare() -> int:
    return 1


@step
def quick(x: int) -> int:
    return x


@step
def train(x: int) -> int:
    logging.getLogger("mine").info("training starts")
    time.sleep(60)
    return x


@step
def report(x: int) -> int:
    return x


@pipeline
def p() -> None:
    x = prepare()
    quick(x)  # beside train: on local_parallel, train runs in a worker thread
    report(train(x))


if __name__ == "__main__":
    p.with_options(orchestrator=sys.argv[1])()
"""
SLEEP_LINE = PIPELINE.splitlines().index("    time.sleep(60)") + 1


def _wait_until_train_runs(process: subprocess.Popen[str]) -> str:
    deadline = time.time() + 30
    while True:
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "the step was never shown as running"
        try:
            run = Client().get_run("latest")
            if run.steps["train"].status == "running":
                return run.id
        except NotFoundError:
            pass  # not recorded yet
        time.sleep(0.05)


@pytest.mark.parametrize("orchestrator", ["local", "local_parallel"])
@pytest.mark.parametrize("entry", ["gristmill run", "python pipeline.py"])
def test_ctrl_c_stops_the_step_and_the_run(project: Project, entry: str, orchestrator: str) -> None:
    (project.root / "pipeline.py").write_text(PIPELINE)
    if entry == "gristmill run":
        gristmill = Path(sys.executable).with_name("gristmill")
        args = [str(gristmill), "run", "pipeline:p", "--orchestrator", orchestrator]
    else:
        args = [sys.executable, "pipeline.py", orchestrator]
    process = subprocess.Popen(
        args, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    run_id = _wait_until_train_runs(process)
    started = time.monotonic()
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=30)
    # At once: a step in a worker thread (it cannot be interrupted) does not hold the exit.
    assert time.monotonic() - started < 15

    run = Client().get_run(run_id)
    where = f"interrupted in step 'train' (pipeline.py:{SLEEP_LINE}); run {run.name} stopped"
    if entry == "gristmill run":
        assert process.returncode == 130, err
        assert where in err
    else:
        # Python's own handling of an uncaught KeyboardInterrupt: it ends by SIGINT, which a
        # shell reports as 130, after printing the traceback with gristmill's message.
        assert process.returncode == -signal.SIGINT, err
        assert f"KeyboardInterrupt: {where}" in err
        assert "Traceback" in err and "time.sleep" not in err  # no frames of the step chained
    assert "[train] INFO training starts" in err  # the step's logging, shown as it ran
    assert run.status == "stopped"
    steps = {name: (s.status, s.error) for name, s in run.steps.items()}
    assert steps == {
        "prepare": ("completed", None),
        "quick": ("completed", None),
        "train": ("stopped", "interrupted by the user"),
        "report": ("stopped", "the run was interrupted"),
    }
    if orchestrator == "local":
        # Interrupted in this thread: what it logged before is kept with the step run. (A
        # worker thread cannot be interrupted; its step is recorded stopped without its log.)
        assert "training starts" in run.steps["train"].logs()
