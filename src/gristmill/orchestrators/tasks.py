"""What the orchestrators that run steps as tasks in other processes (Dask, Ray) share: the
DAG loop (a step is submitted once its upstream steps succeeded, a step whose worker died runs
again while it has retries left), the tasks themselves (the remote execution protocol's
``run_step``; for a run handed over to an engine, a step task that also decides whether the
step may start, and the task that finishes the run), and the variables the workers they start
need. A step task's worker watches its run for a stop request while the step runs
(``execution.stops``). No engine is imported here."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Protocol

from gristmill.execution import RunContext
from gristmill.execution.stops import stop_requested
from gristmill.store import Status

logger = logging.getLogger("gristmill")


class TaskEngine(Protocol):
    """An engine running steps as tasks: Dask's client, Ray. A task is any hashable handle
    (a Dask future, a Ray object ref)."""

    def submit(self, step_id: str, attempt: int) -> Hashable:
        """Start ``run_step_task(run id, step_id)`` somewhere; return its handle at once."""
        ...

    def next_finished(self) -> Hashable:
        """Wait until a submitted task ends and return its handle (each one once)."""
        ...

    def outcome(self, task: Hashable) -> tuple[str, str | None]:
        """What a finished task returned; raises when its worker was lost or it raised."""
        ...

    def lost_reason(self, error: Exception) -> str:
        """Why a task raised, for the step run's error (``the Dask worker ... died: ...``)."""
        ...

    def cancel(self, task: Hashable) -> None:
        """Stop a task (Ctrl-C); best effort."""
        ...


def run_tasks(run: RunContext, engine: TaskEngine) -> None:
    """Each step of ``run`` as a task on ``engine`` once its upstream steps succeeded; a step
    whose upstream did not is skipped, one whose worker died is run again while it has
    retries left (worker losses count against the same ``retries``), else recorded failed."""
    plan = run.plan
    waiting = {step_id: set(plan.upstream(step_id)) for step_id in plan.order}
    children: dict[str, list[str]] = {step_id: [] for step_id in plan.order}
    for step_id, ups in waiting.items():
        for up in ups:
            children[up].append(step_id)
    attempts: dict[str, int] = {}
    running: dict[Hashable, str] = {}

    def submit(step_id: str) -> None:
        blocker = run.blocked_by(step_id)
        if blocker is not None:
            run.skip([step_id], f"upstream step '{blocker}' did not succeed")
            release(step_id)
            return
        attempts[step_id] = attempts.get(step_id, 0) + 1
        for listener in run.listeners:
            listener.step_started(step_id=step_id)
        running[engine.submit(step_id, attempts[step_id])] = step_id

    def release(step_id: str) -> None:
        for child in children[step_id]:
            waiting[child].discard(step_id)
            if not waiting[child]:
                submit(child)

    try:
        for step_id in plan.order:
            if not waiting[step_id]:
                submit(step_id)
        while running:
            task = engine.next_finished()
            step_id = running.pop(task)
            try:
                status, error = engine.outcome(task)
            except Exception as exc:  # the worker died, was lost, or could not run the step
                reason = engine.lost_reason(exc)
                if attempts[step_id] <= plan.steps[step_id].retries.count:
                    logger.warning("step '%s': %s; running it again", step_id, reason)
                    submit(step_id)
                    continue
                run.lost(step_id, reason, attempts=attempts[step_id])
            else:
                run.launched_elsewhere(step_id, status, error)
            release(step_id)
    except KeyboardInterrupt:
        for task, step_id in running.items():
            engine.cancel(task)
            run.interrupted(step_id)
        raise


def run_step_task(run_id: str, step_id: str) -> tuple[str, str | None]:
    """The task: one step in this worker process (module-level, so workers import it by
    name). Returns only the status and error: outputs went to the artifact store. A stop
    request for the run (``gristmill runs stop``) keeps the step from starting, or
    interrupts it as Ctrl-C would (the worker watches the run while the step runs): it ends
    ``stopped``."""
    from gristmill.execution.worker import run_step

    _console_to_stderr()
    result = run_step(run_id, step_id)
    return result.status, result.error


def run_submitted_step(
    run_id: str, step_id: str, upstream: list[str], *ended: tuple[str, str | None]
) -> tuple[str, str | None]:
    """The task of one step of a run handed to an engine (``Submitting``), given what its
    ``upstream`` steps' tasks returned (``ended``, in that order): the step is recorded
    ``stopped`` without running when one of them did not succeed, or when the run was asked
    to stop; else it runs (``run_step_task``). Never raises: a step that could not run is
    recorded failed where the store can take it, so the run's ``finish`` still comes."""
    from gristmill.client import STOP_REQUESTED
    from gristmill.execution.worker import attached_run, worker_project

    _console_to_stderr()
    try:
        store = worker_project().store()
        for name, (status, _) in zip(upstream, ended, strict=True):
            if status not in Status.SUCCEEDED:
                reason = f"upstream step '{name}' did not succeed"
                store.stop_step_runs(run_id, [step_id], reason=reason, at=time.time())
                return Status.STOPPED, reason
        if stop_requested(store, run_id):
            store.stop_step_runs(run_id, [step_id], reason=STOP_REQUESTED, at=time.time())
            return Status.STOPPED, STOP_REQUESTED
        ended_as = run_step_task(run_id, step_id)
        # No process of ours beats for a handed-over run: its steps keep it alive.
        store.heartbeat(run_id, time.time())
        return ended_as
    except Exception as exc:
        reason = f"the worker could not run it: {type(exc).__name__}: {exc}"
        try:
            attached_run(run_id, [step_id], project=worker_project()).lost(
                step_id, reason, attempts=1
            )
        except Exception as again:  # the store is out of reach: the reaper ends the run
            logger.error("step '%s' of run %s: %s (%s)", step_id, run_id[:12], reason, again)
        return Status.FAILED, reason


def finish_submitted_run(run_id: str, *ended: tuple[str, str | None]) -> str:
    """The last task of a run handed to an engine, after every step's: set the run's final
    status from what its steps recorded (``stopped`` when a stop was requested). A run that
    already ended (``gristmill runs stop`` ended it) is left as it is."""
    from gristmill.execution.worker import worker_project

    _console_to_stderr()
    project = worker_project()
    record = project.store().get_run(run_id)
    if record.status in Status.FINISHED:
        return record.status
    run = RunContext.attach(run_id, project=project, steps=())
    return run.finish(interrupted=record.status == Status.STOPPING)


def warm_worker() -> None:
    """Run once in every worker an orchestrator starts, all at once, before the first step:
    what each step needs first (the launcher's modules, the stores) is then ready, instead of
    being paid by the first step each worker gets."""
    from gristmill.execution.worker import prepare_worker

    _console_to_stderr()
    prepare_worker()


def _console_to_stderr() -> None:
    """What steps print in a worker goes to its stderr (and to their logs, as ever): a local
    worker shares the orchestrating program's console, whose stdout may carry a document
    (``gristmill run --json``). At the descriptor level, so that native code and the steps'
    subprocesses follow; done again by a second thread, it changes nothing."""
    try:
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real descriptors here: nothing to move
        pass


def worker_environment_variables(run: RunContext) -> dict[str, str]:
    """What the workers this process starts need to find the stores and the user's code:
    set in their environment (never on a command line, never logged). With a gristmill
    server as the store, its API token goes with its URL."""
    from gristmill.execution.worker import (
        PROJECT_VARIABLE,
        STORE_URL_VARIABLE,
        worker_credentials,
    )
    from gristmill.project import find_project

    return {
        STORE_URL_VARIABLE: run.store.url,
        PROJECT_VARIABLE: str(find_project().root),
        # The user's code imports in the workers as it does here.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir()),
        **worker_credentials(run.store.url),
    }
