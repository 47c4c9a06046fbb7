"""A step of a run, in a worker process: what ``python -m gristmill.execution step`` and the
Dask/Ray orchestrators call. The worker finds the stores in its environment (never on a
command line), takes its step run (host, pid, its own environment, a heartbeat), launches it
through the one launcher and returns its status. It must not start or finish the run."""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.store.base import HEARTBEAT_SECONDS

if TYPE_CHECKING:
    from gristmill.execution.run import RunContext
    from gristmill.project import Project

# Where a worker learns where the stores are; the orchestrator's process sets them for the
# workers it starts, and an operator sets them on a cluster's workers.
STORE_URL_VARIABLE = "GRISTMILL_STORE_URL"
PROJECT_VARIABLE = "GRISTMILL_PROJECT"
SECRETS_KEY_VARIABLE = "GRISTMILL_SECRETS_KEY"
# The container image a worker runs in, when its platform says so (recorded as is).
IMAGE_VARIABLES = ("GRISTMILL_IMAGE", "CONTAINER_IMAGE", "IMAGE_NAME")

_logs_installed = False
_logs_lock = threading.Lock()


@dataclass(frozen=True)
class StepResult:
    """What a worker sends back to the orchestrator: small, plain data (the outputs
    themselves went to the artifact store)."""

    step_id: str
    status: str
    error: str | None
    host: str
    pid: int


def worker_project() -> Project:
    """The project a worker records into, from its environment only. Without
    ``GRISTMILL_STORE_URL`` or ``GRISTMILL_PROJECT`` it fails, creating nothing."""
    from gristmill.project import find_project

    if not os.environ.get(STORE_URL_VARIABLE) and not os.environ.get(PROJECT_VARIABLE):
        raise ConfigError(
            f"a gristmill worker on {socket.gethostname()} has neither {STORE_URL_VARIABLE} "
            f"nor {PROJECT_VARIABLE} in its environment: set them (and {SECRETS_KEY_VARIABLE} "
            "if the stack uses secrets) on the workers; they are never passed on a command line"
        )
    project = find_project()
    project.check_readable()  # a URL naming a missing SQLite file is an error, not a new store
    return project


def worker_environment() -> dict[str, Any]:
    """Where a step really ran: host, pid, Python, platform, gristmill, the installed packages
    (their digest) and the container image, if the worker knows it."""
    from gristmill._hashing import hash_text
    from gristmill._version import __version__
    from gristmill.execution.environment import installed_packages

    packages = installed_packages()
    environment: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "gristmill": __version__,
        "packages": {"hash": hash_text("\n".join(packages)), "count": len(packages)},
    }
    image = next((os.environ[v] for v in IMAGE_VARIABLES if os.environ.get(v)), None)
    if image:
        environment["image"] = image
    return environment


def run_step(
    run_ref: str, step_id: str, *, heartbeat_seconds: float = HEARTBEAT_SECONDS
) -> StepResult:
    """Run one step of a recorded run in this process and return how it ended. Step failures
    are results; a worker that cannot reach the stores raises."""
    from gristmill.execution.run import RunContext

    project = worker_project()
    run = RunContext.attach(run_ref, project=project)
    if step_id not in run.plan.steps:
        from gristmill.errors import NotFoundError, did_you_mean

        raise NotFoundError(
            f"run {run.plan.run_name} has no step '{step_id}'"
            f"{did_you_mean(step_id, run.plan.steps)}"
        )
    return launch_in_worker(run, step_id, heartbeat_seconds=heartbeat_seconds)


def launch_in_worker(
    run: RunContext, step_id: str, *, heartbeat_seconds: float = HEARTBEAT_SECONDS
) -> StepResult:
    """Take the step run (worker, environment, ``running``), beat for it while it runs and
    launch it."""
    _install_logs()
    step_run_id = run.plan.steps[step_id].step_run_id
    environment = worker_environment()
    run.store.claim_step_run(
        step_run_id,
        at=time.time(),
        host=environment["host"],
        pid=environment["pid"],
        environment=environment,
    )
    beat = _StepHeartbeat(run, step_run_id, heartbeat_seconds)
    beat.start()
    try:
        outcome = run.launch(step_id)
    finally:
        beat.stop()
    error = None
    if outcome.error is not None:
        error = f"{type(outcome.error).__name__}: {outcome.error}"
    return StepResult(step_id, outcome.status, error, environment["host"], environment["pid"])


def _install_logs() -> None:
    """Once per worker process: steps' output goes to their logs (as in a local run)."""
    global _logs_installed
    with _logs_lock:
        if not _logs_installed:
            from gristmill.execution import logs

            logs.install()
            _logs_installed = True


class _StepHeartbeat:
    """Beats for one step run (and its run) while it runs here: the run stays alive in the
    store's eyes even when no process of the orchestrator's beats for it."""

    def __init__(self, run: RunContext, step_run_id: str, every: float) -> None:
        self._run = run
        self._step_run_id = step_run_id
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"gristmill-step-beat-{step_run_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        store = self._run.store
        while not self._stop.wait(self._every):
            now = time.time()
            try:
                store.step_heartbeat([self._step_run_id], now)
                store.heartbeat(self._run.plan.run_id, now)
            except Exception:  # a missed beat is not worth the step; the next one may pass
                continue
