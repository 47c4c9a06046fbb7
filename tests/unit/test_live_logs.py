"""A step's logs can be followed while it runs: once it has run for a moment they are written
where its step run says, refreshed every second, and replaced by the final logs when it ends
(no write of the running copy lands after them)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gristmill import Client, pipeline, step
from gristmill.project import Project
from gristmill.stacks import secrets

SECRET = "live-s3cr3t-42"


@step(cache=False)
def chatty(gate: str) -> int:
    print("first line", flush=True)
    print(f"token {SECRET}", flush=True)
    deadline = time.monotonic() + 20
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("second line")
    return 1


@pipeline
def talking(gate: str) -> None:
    chatty(gate=gate)


def _logs_while_running(timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = Client().list_runs(limit=1)
        if runs and runs[0].status == "running":
            step_run = runs[0].steps.get("chatty")
            if step_run is not None and step_run.status == "running":
                text = step_run.logs()
                if "first line" in text:
                    return text
        time.sleep(0.1)
    raise AssertionError("the running step's logs never showed its first line")


def test_logs_are_followed_while_the_step_runs(gristmill_project: Project, tmp_path: Path) -> None:
    secrets.remember(SECRET)
    gate = tmp_path / "gate"
    finished: list[object] = []
    worker = threading.Thread(target=lambda: finished.append(talking(gate=str(gate))))
    worker.start()
    try:
        live = _logs_while_running()
    finally:
        gate.touch()
        worker.join(30)
    assert "second line" not in live
    assert SECRET not in live  # redacted as the final logs are
    [run] = finished
    final = Client().get_run(run.id).steps["chatty"].logs()
    assert final.splitlines()[0] == "first line"
    assert final.rstrip().endswith("second line")
    assert SECRET not in final


def test_steps_logs_follow_prints_until_the_step_ends(
    gristmill_project: Project, tmp_path: Path
) -> None:
    """`gristmill steps logs RUN STEP --follow` prints the lines as they come and returns when
    the step has ended."""
    import os
    import subprocess
    import sys

    gate = tmp_path / "gate"
    (gristmill_project.root / "followed.py").write_text(
        "from tests.unit.test_live_logs import talking\n"
        f"if __name__ == '__main__':\n    talking(gate={str(gate)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    running = subprocess.Popen([sys.executable, "followed.py"], cwd=gristmill_project.root, env=env)
    try:
        _logs_while_running()
        follower = subprocess.Popen(
            [
                Path(sys.executable).with_name("gristmill"),
                "steps",
                "logs",
                "latest",
                "chatty",
                "-f",
            ],
            cwd=gristmill_project.root,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert follower.poll() is None  # still following: the step has not ended
        gate.touch()
        out, _ = follower.communicate(timeout=30)
    finally:
        gate.touch()
        running.wait(30)
    assert out.splitlines()[0] == "first line"
    assert out.rstrip().endswith("second line")
    assert follower.returncode == 0


def test_a_log_store_that_fails_while_the_step_runs_loses_nothing(
    gristmill_project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the running copy cannot be written, the step is still marked running, it says so
    once, and the final logs are saved when the step ends."""
    import logging

    from gristmill.execution import logs as logs_module

    def failing_flush(self: logs_module.LiveLogs) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(logs_module.LiveLogs, "flush", failing_flush)
    gate = tmp_path / "gate"
    finished: list[object] = []
    worker = threading.Thread(target=lambda: finished.append(talking(gate=str(gate))))
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        worker.start()
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                runs = Client().list_runs(limit=1)
                if (
                    runs
                    and runs[0].steps.get("chatty")
                    and runs[0].steps["chatty"].status == ("running")
                ):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the step was never marked running")
            time.sleep(1.5)  # a second write attempt would happen here
        finally:
            gate.touch()
            worker.join(30)
    warnings = [r for r in caplog.records if "cannot write the logs" in r.getMessage()]
    assert len(warnings) == 1
    [run] = finished
    final = Client().get_run(run.id).steps["chatty"].logs()
    assert final.rstrip().endswith("second line")
