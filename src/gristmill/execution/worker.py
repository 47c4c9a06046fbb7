"""A step of a run, in a worker process: what ``python -m gristmill.execution step`` and the
Dask/Ray orchestrators call. The worker finds the stores in its environment (never on a
command line), takes its step run (host, pid, its own environment, a heartbeat), launches it
through the one launcher and returns its status. It must not start or finish the run."""

from __future__ import annotations

import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.store.base import HEARTBEAT_SECONDS

if TYPE_CHECKING:
    from gristmill.execution.run import RunContext
    from gristmill.project import Project
    from gristmill.store import MetadataStore

# Where a worker learns where the stores are; the orchestrator's process sets them for the
# workers it starts, and an operator sets them on a cluster's workers.
STORE_URL_VARIABLE = "GRISTMILL_STORE_URL"
PROJECT_VARIABLE = "GRISTMILL_PROJECT"
SECRETS_KEY_VARIABLE = "GRISTMILL_SECRETS_KEY"
# The container image a worker runs in, when its platform says so (recorded as is).
IMAGE_VARIABLES = ("GRISTMILL_IMAGE", "CONTAINER_IMAGE", "IMAGE_NAME")

_logs_installed = False
_logs_lock = threading.Lock()
# Runs attached in this worker process: (store URL, run id) → the run, steps compiled as they
# come. Attaching costs a plan compile and a few store reads: paid once per run, not per step.
_attached: dict[tuple[str, str], RunContext] = {}
_attached_lock = threading.Lock()
MAX_ATTACHED_RUNS = 8


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
    """Where a step really ran: host, pid, Python (version, executable, prefix), platform,
    gristmill, the installed packages
    (their digest) and the container image, if the worker knows it."""
    from gristmill._hashing import hash_text
    from gristmill._version import __version__
    from gristmill.execution.environment import installed_packages

    packages = installed_packages()
    environment: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        # Which interpreter and environment (a venv's prefix): a step operator may use another.
        "executable": sys.executable,
        "prefix": sys.prefix,
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
    run = attached_run(run_ref, [step_id], project=worker_project())
    return launch_in_worker(run, step_id, heartbeat_seconds=heartbeat_seconds)


def prepare_worker() -> None:
    """Pay once, before the first step, what every step in this process needs first: the
    launcher's modules imported, the metadata store opened, the run configuration's validator
    built, logs captured. Orchestrators call it on every worker they start, all at once."""
    from gristmill.execution import run as _run  # noqa: F401  (the launcher and its imports)
    from gristmill.options import RunConfig

    worker_project().store()
    RunConfig.from_dict({})
    worker_environment()
    _install_logs()


def attached_run(run_ref: str, step_ids: list[str], *, project: Project) -> RunContext:
    """The run, attached from the store once per worker process and kept while it runs (a
    worker gets many steps of one run), with ``step_ids`` compiled: only their code is
    imported. Runs that ended are forgotten when another run is attached."""
    from gristmill.errors import NotFoundError, did_you_mean
    from gristmill.execution.run import RunContext

    store = project.store()
    with _attached_lock:
        run = _attached.get((store.url, run_ref))
        if run is None:
            _forget_ended_runs(store)
            run = RunContext.attach(run_ref, project=project, steps=())
            _attached[(store.url, run.plan.run_id)] = run
    unknown = [s for s in step_ids if s not in run.plan.order]
    if unknown:
        raise NotFoundError(
            f"run {run.plan.run_name} has no step '{unknown[0]}'"
            f"{did_you_mean(unknown[0], run.plan.order)}"
        )
    run.add_steps(step_ids)
    return run


def _forget_ended_runs(store: MetadataStore) -> None:
    """Drop the attached runs that ended (and the oldest beyond ``MAX_ATTACHED_RUNS``);
    called with ``_attached_lock`` held."""
    from gristmill.errors import NotFoundError
    from gristmill.store import Status

    for key in list(_attached):
        if key[0] != store.url:
            continue
        try:
            ended = store.get_run(key[1]).status in Status.FINISHED
        except NotFoundError:  # deleted meanwhile
            ended = True
        if ended:
            del _attached[key]
    while len(_attached) >= MAX_ATTACHED_RUNS:
        del _attached[next(iter(_attached))]


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
