"""The step-operator extension point. ``launch`` (here) builds what every operator needs — the
command that runs the step through the one launcher (``python -m gristmill.execution step``),
the environment that tells the worker where the stores are and its credentials (the secrets
key, a gristmill server's API token: never on a command line), the
step's resources and image — and follows the step run in the metadata store until it ends.
A flavor implements ``_submit`` (start the job; return a handle) and ``_status`` (is it still
running, or how did it end); flavors that build a provider request (Kubernetes, SageMaker,
Vertex, Batch) also implement ``build_request`` so tests can check it against the provider
SDK's own models without a cluster or a cloud account.

An operator whose "somewhere else" is this process with something set up around the step (a
Spark session) is an ``InProcessStepOperator``: it implements ``_around`` only.

The job's environment names the step run it is for (``GRISTMILL_OPERATOR_STEP_RUN``): the
worker then runs that step in place instead of handing it to the operator again."""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from gristmill._plugins import Flavor
from gristmill.errors import StepOperatorError
from gristmill.execution.run import OPERATOR_JOB_VARIABLE
from gristmill.execution.worker import worker_credentials

if TYPE_CHECKING:
    from gristmill.execution.run import RunContext

logger = logging.getLogger("gristmill")
T = TypeVar("T")

# What a worker needs in its environment to find the stores (execution/worker.py reads them);
# the credentials (the secrets key, a server's API token) come from ``worker_credentials``.
FORWARDED_VARIABLES = ("GRISTMILL_STORE_URL", "GRISTMILL_PROJECT")


@dataclass(frozen=True)
class StepJob:
    """One step of one run, as an operator submits it."""

    run_id: str
    run_name: str
    step_id: str
    step_run_id: str
    # The command the job runs: ``python -m gristmill.execution step --run R S``.
    command: tuple[str, ...]
    # Values the worker reads from its environment (secrets among them: never log them, and
    # not in the job's repr).
    environment: dict[str, str] = field(repr=False)
    # The step's resources (``Resources``), if it asked for any.
    resources: Any = None
    image: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    """How a submitted job is doing: ``running``, or ended (``succeeded``/``failed``, with a
    reason for the failure)."""

    state: str
    reason: str | None = None

    @property
    def ended(self) -> bool:
        return self.state != "running"


class StepOperator(Flavor, abc.ABC):
    """Runs one step away from the orchestrator's process and waits for it."""

    flavor: ClassVar[str]
    # Seconds between two looks at a running job.
    poll_seconds: ClassVar[float] = 1.0

    def launch(self, run: RunContext, step_id: str) -> str:
        """Run ``step_id`` of ``run`` through this operator; its final status, as recorded by
        the worker (a job that died before recording anything is recorded ``failed``). A
        provider's API error becomes a StepOperatorError that says what to fix."""
        job = self.job_for(run, step_id)
        handle = self._provider_call(job, "submitting the job", self._submit, job)
        try:
            while True:
                status = self._provider_call(job, "following the job", self._status, handle)
                if status.ended:
                    return self._outcome(run, job, status)
                time.sleep(self.poll_seconds)
        except BaseException:  # Ctrl-C, or a failure to follow the job: do not leave it running
            try:
                self._cancel(handle)
            except Exception as exc:  # the first error is the one to see; say this one
                logger.warning(
                    "step operator %s could not cancel the job of step '%s': %s",
                    self.flavor,
                    step_id,
                    self.provider_error(exc, job=job, doing="cancelling the job") or exc,
                )
            raise

    def _provider_call(self, job: StepJob, doing: str, call: Callable[[Any], T], arg: Any) -> T:
        try:
            return call(arg)
        except Exception as exc:
            error = self.provider_error(exc, job=job, doing=doing)
            if error is None:
                raise
            raise error from exc

    def provider_error(
        self, error: Exception, *, job: StepJob, doing: str
    ) -> StepOperatorError | None:
        """``error`` as a StepOperatorError naming this operator, the step, the provider's
        message and the fix, when the flavor knows it (``_explain``); else None."""
        explained = self._explain(error)
        if explained is None:
            return None
        said, fix = explained
        return StepOperatorError(
            f"step operator {self.flavor}: {doing} of step '{job.step_id}' (run "
            f"{job.run_name}) failed: {said}. To fix: {fix}"
        )

    def _explain(self, error: Exception) -> tuple[str, str] | None:
        """What the provider said and how to fix it, for the provider's own errors (its API
        refused the request, credentials or quota); None for anything else."""
        return None

    def job_for(self, run: RunContext, step_id: str) -> StepJob:
        plan = run.plan.steps[step_id]
        environment = {k: os.environ[k] for k in FORWARDED_VARIABLES if os.environ.get(k)}
        if "GRISTMILL_STORE_URL" not in environment:
            environment["GRISTMILL_STORE_URL"] = run.store.url
        environment.update(worker_credentials(environment["GRISTMILL_STORE_URL"]))
        environment[OPERATOR_JOB_VARIABLE] = plan.step_run_id
        return StepJob(
            run_id=run.plan.run_id,
            run_name=run.plan.run_name,
            step_id=step_id,
            step_run_id=plan.step_run_id,
            command=(
                self.python(),
                "-m",
                "gristmill.execution",
                "step",
                "--run",
                run.plan.run_id,
                step_id,
            ),
            environment=environment,
            resources=plan.options.resources,
            image=plan.settings.get("image"),
            settings=dict(plan.settings),
        )

    def python(self) -> str:
        """The interpreter the job runs the step with (the job's own ``python`` by default)."""
        return "python"

    def _outcome(self, run: RunContext, job: StepJob, status: JobStatus) -> str:
        """The status the worker recorded; a job that ended without recording one is lost."""
        reason = status.reason or f"the {self.flavor} job ended without recording the step"
        run.lost(job.step_id, f"step operator {self.flavor}: {reason}", attempts=1)
        return run.outcomes[job.step_id].status

    @abc.abstractmethod
    def _submit(self, job: StepJob) -> Any:
        """Start the job; return whatever ``_status`` needs to follow it."""

    @abc.abstractmethod
    def _status(self, handle: Any) -> JobStatus:
        """How the job is doing now."""

    def _cancel(self, handle: Any) -> None:
        """Stop the job (the run was interrupted, or following it failed); by default the job
        is left to end on its own."""


class InProcessStepOperator(StepOperator):
    """An operator that runs the step in this process, inside what ``_around`` sets up (a Spark
    session): no job, no polling, the step's outcome is the launcher's."""

    def launch(self, run: RunContext, step_id: str) -> str:
        with self._around(run, step_id):
            return run.run_here(step_id).status

    @abc.abstractmethod
    def _around(self, run: RunContext, step_id: str) -> contextlib.AbstractContextManager[Any]:
        """What the step runs inside."""

    def _submit(self, job: StepJob) -> Any:
        raise TypeError(f"step operator {self.flavor} runs steps in process; it submits no job")

    def _status(self, handle: Any) -> JobStatus:
        raise TypeError(f"step operator {self.flavor} runs steps in process; it has no jobs")
