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
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.execution.stops import StopWatch
from gristmill.store import Status
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
# The API token, when the store is a gristmill server (store/rest/connection.py reads it).
TOKEN_VARIABLE = "GRISTMILL_API_TOKEN"
# The container image a worker runs in, when its platform says so (recorded as is).
IMAGE_VARIABLES = ("GRISTMILL_IMAGE", "CONTAINER_IMAGE", "IMAGE_NAME")

_logs_installed = False
_logs_lock = threading.Lock()
# Runs attached in this worker process: (store URL, run id) → the run, steps compiled as they
# come. Attaching costs a plan compile and a few store reads: paid once per run, not per step.
_attached: dict[tuple[str, str], RunContext] = {}
_attached_lock = threading.Lock()
MAX_ATTACHED_RUNS = 8
# Held while a worker decides where its steps' code comes from (``sys.path`` may change).
_code_lock = threading.Lock()
# The environment each attached run recorded at its start (where its code snapshot is named).
_run_environments: weakref.WeakKeyDictionary[RunContext, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


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
    ``GRISTMILL_STORE_URL`` or ``GRISTMILL_PROJECT`` it fails, creating nothing; so does a
    worker given a server URL without ``GRISTMILL_API_TOKEN``."""
    from gristmill.project import find_project

    if not os.environ.get(STORE_URL_VARIABLE) and not os.environ.get(PROJECT_VARIABLE):
        raise ConfigError(
            f"a gristmill worker on {socket.gethostname()} has neither {STORE_URL_VARIABLE} "
            f"nor {PROJECT_VARIABLE} in its environment: set them (and {SECRETS_KEY_VARIABLE} "
            "if the stack uses secrets) on the workers; they are never passed on a command line"
        )
    project = find_project()
    project.check_readable()  # a URL naming a missing SQLite file is an error, not a new store
    url = project.store_url
    if is_server_url(url):
        from gristmill.store.rest.connection import token_for

        if not token_for(url):
            from gristmill.store import safe_url

            raise ConfigError(
                f"a gristmill worker on {socket.gethostname()} records through the server at "
                f"{safe_url(url)} and has no {TOKEN_VARIABLE} in its environment: set it on "
                "the workers (an editor's token, `gristmill token create --role editor`; from "
                "a secret on a cluster); it is never passed on a command line"
            )
    return project


def is_server_url(url: str) -> bool:
    """Whether the metadata store at ``url`` is a gristmill server (the REST store)."""
    return url.startswith(("http://", "https://"))


def worker_credentials(store_url: str) -> dict[str, str]:
    """The credentials a worker started from this process needs besides the store's URL: the
    secrets key (when this process has one) and, for a server URL, the API token this process
    records with (``GRISTMILL_API_TOKEN``, or the one ``gristmill connect`` saved). For the
    workers' environment, or a secret a cluster's jobs read: never a command line, never a
    log."""
    credentials: dict[str, str] = {}
    key = os.environ.get(SECRETS_KEY_VARIABLE)
    if key:
        credentials[SECRETS_KEY_VARIABLE] = key
    if is_server_url(store_url):
        from gristmill.store.rest.connection import token_for

        token = token_for(store_url)
        if token:
            credentials[TOKEN_VARIABLE] = token
    return credentials


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
    use_run_code(run, step_ids, project=project)
    run.add_steps(step_ids)
    return run


def use_run_code(run: RunContext, step_ids: list[str], *, project: Project) -> None:
    """Before the steps' code is imported: import it from the working copy when it is here
    and unchanged since the run started, else from the run's code snapshot (fetched from the
    artifact store, verified, restored once per host). A ConfigError when it is neither."""
    from gristmill.execution.snapshot import prepare_imports, snapshot_folder

    new = [s for s in step_ids if s in run.plan.order and s not in run.plan.steps]
    if not new:
        return
    modules = {
        run.plan.spec.step(s).source.partition(":")[0]: f"step '{s}' of run {run.plan.run_name}"
        for s in new
    }
    with _code_lock:
        environment = _run_environments.get(run)
        if environment is None:  # read once per attached run: steps of it come one by one
            environment = _run_environments[run] = run.store.get_run(run.plan.run_id).environment
        prepare_imports(
            modules=modules,
            environment=environment,
            store=run.artifact_store,
            folder=snapshot_folder(project.directory),
        )


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
    launch it, watching its run for a stop request meanwhile.

    A run asked to stop (``stopping``), or already ended, before the step starts: the step is
    recorded ``stopped`` without running. A stop request while it runs interrupts it as
    Ctrl-C would (the launcher records it ``stopped``). Either way the result is ``stopped``
    with the reason; a KeyboardInterrupt that is not the watch's (a real Ctrl-C) is let
    through, with the step recorded ``stopped``."""
    _install_logs()
    step_run_id = run.plan.steps[step_id].step_run_id
    environment = worker_environment()
    refused = _stopped_before_start(run)
    if refused is not None:
        run.skip([step_id], refused)
        return StepResult(step_id, Status.STOPPED, refused, environment["host"], environment["pid"])
    run.store.claim_step_run(
        step_run_id,
        at=time.time(),
        host=environment["host"],
        pid=environment["pid"],
        environment=environment,
    )
    beat = _StepHeartbeat(run, step_run_id, heartbeat_seconds)
    beat.start()
    watch = StopWatch(run.store, run.plan.run_id).start()
    try:
        try:
            outcome = run.launch(step_id)
        finally:
            fired = watch.disarm()
            beat.stop()
    except KeyboardInterrupt:
        if step_id not in run.outcomes:  # raised outside the launcher: record it here
            run.interrupted(step_id)
        if not watch.fired:
            raise
        # The watch's: the step was interrupted (or, the request coming as it ended, the
        # interruption landed after it was recorded: then it ended as it did).
        from gristmill.execution.launcher import StepOutcome

        outcome = run.outcomes.get(step_id) or StepOutcome(step_id, Status.STOPPED)
    else:
        if fired:  # sent as the step ended and not delivered yet: take it here
            watch.absorb()
    if outcome.status == Status.STOPPED and watch.fired:
        from gristmill.client import STOP_REQUESTED

        error: str | None = STOP_REQUESTED
    elif outcome.error is not None:
        error = f"{type(outcome.error).__name__}: {outcome.error}"
    else:
        error = None
    return StepResult(step_id, outcome.status, error, environment["host"], environment["pid"])


def _stopped_before_start(run: RunContext) -> str | None:
    """Why no step of ``run`` may start now (a stop was requested, or the run ended), or
    None when steps may start. One read of the run: its status is all that is needed."""
    record = run.store.get_run(run.plan.run_id)
    if record.status in (Status.STOPPING, Status.STOPPED):
        from gristmill.client import STOP_REQUESTED

        return STOP_REQUESTED
    if record.status in Status.FINISHED:
        return f"run {run.plan.run_name} had already ended ({record.status}): nothing of it starts"
    return None


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
