"""What the orchestrators that run steps as tasks in other processes (Dask, Ray) share: the
DAG loop (a step is submitted once its upstream steps succeeded, a step whose worker died runs
again while it has retries left), the task itself (the remote execution protocol's
``run_step``), and the variables the workers they start need. No engine is imported here."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Hashable
from pathlib import Path
from typing import Protocol

from gristmill.execution import RunContext

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
    name). Returns only the status and error: outputs went to the artifact store."""
    from gristmill.execution.worker import run_step

    _console_to_stderr()
    result = run_step(run_id, step_id)
    return result.status, result.error


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
    set in their environment (never on a command line, never logged)."""
    from gristmill.execution.worker import (
        PROJECT_VARIABLE,
        SECRETS_KEY_VARIABLE,
        STORE_URL_VARIABLE,
    )
    from gristmill.project import find_project

    env = {
        STORE_URL_VARIABLE: run.store.url,
        PROJECT_VARIABLE: str(find_project().root),
        # The user's code imports in the workers as it does here.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir()),
    }
    key = os.environ.get(SECRETS_KEY_VARIABLE)
    if key:
        env[SECRETS_KEY_VARIABLE] = key
    return env
