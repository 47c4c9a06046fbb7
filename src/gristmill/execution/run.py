"""One run's state in one process: its plan, its stores, the outputs published so far, its
heartbeat. Orchestrators drive a RunContext; they never touch the stores themselves."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

from gristmill.artifacts import ArtifactStore
from gristmill.errors import ConfigError, NotFoundError, StoreError
from gristmill.execution import logs
from gristmill.execution.environment import EnvironmentProbe
from gristmill.execution.inputs import attach_external_inputs, resolve_external_inputs
from gristmill.execution.launcher import StepOutcome, launch_step, redact, step_line
from gristmill.execution.logs import LiveLogs
from gristmill.execution.models import resolve_models
from gristmill.execution.plan import RunPlan
from gristmill.execution.snapshot import record_code
from gristmill.options import STEP_DEFAULTS
from gristmill.project import Project
from gristmill.stacks import Stack
from gristmill.store import (
    ArtifactVersionRecord,
    MetadataStore,
    ModelVersionRecord,
    RunRecord,
    Status,
    StepRunRecord,
    StepStart,
)
from gristmill.store.base import HEARTBEAT_SECONDS

if TYPE_CHECKING:
    from gristmill.step_operators.base import StepOperator
from gristmill.store.ids import pipeline_version_id

# Set in the environment of a step operator's job: the step run it is for, which ``launch``
# then runs in place (instead of handing it to the operator again).
OPERATOR_JOB_VARIABLE = "GRISTMILL_OPERATOR_STEP_RUN"
# How long a step runs before it is shown as running (a write the quick steps skip).
RUNNING_MARK_DELAY = 0.1
# How often the logs of a step still running are written where readers follow them.
LIVE_LOGS_SECONDS = 1.0
# Why a step the user stopped with Ctrl-C ended (its stored error; no traceback).
INTERRUPTED = "interrupted by the user"
# The monitor thread says at most this often that it cannot write to the metadata store.
MONITOR_WARNING_SECONDS = 60.0

logger = logging.getLogger("gristmill")


class RunListener:
    """Told when steps start and finish (the CLI shows progress with it). Methods take
    keyword arguments and ``**future`` so new information can be added without breaking."""

    def step_started(self, *, step_id: str, **future: Any) -> None:
        """A step is about to run (or be served from cache)."""

    def step_finished(self, *, step_id: str, status: str, **future: Any) -> None:
        """A step completed, was cached, failed or was stopped."""


class RunContext:
    """The run being executed: orchestrators call ``launch``/``skip`` per step."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        store: MetadataStore,
        artifact_store: ArtifactStore,
        stack: Stack,
        orchestrator: str,
        listeners: Iterable[RunListener] = (),
    ) -> None:
        self.listeners = list(listeners)
        self.plan = plan
        self.store = store
        self.artifact_store = artifact_store
        self.stack = stack
        self.orchestrator = orchestrator
        self.outcomes: dict[str, StepOutcome] = {}
        self._outputs: dict[str, dict[str, ArtifactVersionRecord]] = {}
        self._lock = threading.Lock()
        self.monitor = _Monitor(store, plan.run_id)
        self._probe: EnvironmentProbe | None = None
        self._logs_installed = False
        # Steps the user interrupted (Ctrl-C) → where their code was (file:line), if known.
        self.interrupted_steps: dict[str, str | None] = {}
        # Step id → the model version its outputs are linked to (steps with a model only).
        self.model_versions: dict[str, ModelVersionRecord] = {}
        # The stack's experiment tracker, built when a step first names it.
        self._tracker: Any = None
        # An attached run (a worker's): step id → step run id, and the external input
        # versions the run recorded (step → argument → version id).
        self._step_run_ids: dict[str, str] = {}
        self._recorded_inputs: dict[str, dict[str, str]] = {}
        # The stack's step operator, built when a step first names it.
        self._operator: StepOperator | None = None

    def experiment_tracker(self, step: tuple[str, str]) -> Any:
        """The stack's experiment tracker for ``(step id, tracker name)``, built once (the
        flavor's packages and settings checked); a ConfigError naming the step and the fix
        when the stack has no tracker of that name."""
        step_id, name = step
        component = self.stack.components.get("experiment_tracker")
        if component is None or component.name != name:
            has = f"experiment tracker '{component.name}'" if component else "no experiment tracker"
            raise ConfigError(
                f"step '{step_id}' uses experiment tracker '{name}', but stack "
                f"'{self.stack.name}' has {has}: register a stack with it (`gristmill stack "
                f"register NAME -o ... -a ... -e {name}`) and run on that stack, or remove the "
                "step's experiment_tracker option"
            )
        with self._lock:
            if self._tracker is None:
                from gristmill.stacks.secrets import references

                resolve = None
                if references(component.config):
                    from gristmill.project import find_project

                    resolve = find_project().resolve
                self._tracker = component.build(resolve=resolve)
            return self._tracker

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, *, detached: bool = False) -> None:
        """Record the run and its pending step runs; start the heartbeat. ``detached``: this
        process only records the run (a scheduler's ``start``, a submitting orchestrator) and
        will not beat for it; the run is ``submitted``, no pid is recorded, and it lives by
        its steps' heartbeats."""
        plan = self.plan
        # A step naming a tracker the stack lacks fails here, before anything is recorded.
        for tracked in tracked_steps(plan).items():
            self.experiment_tracker(tracked)
        # So does a step naming a step operator the stack lacks (or one that cannot be built).
        for step_id, step_plan in plan.steps.items():
            if step_plan.options.step_operator:
                self.step_operator((step_id, step_plan.options.step_operator))
        # Before anything is recorded: an unknown artifact version is an error at the start.
        data: dict[str, dict[str, dict[str, Any]]] = {}
        resolved = resolve_external_inputs(plan, self.store, self.artifact_store, data)
        now = time.time()
        # The model versions the steps' outputs belong to (a new one for version=None).
        self.model_versions = resolve_models(plan, self.store, at=now)
        config = resolved_config(plan, resolved, data)
        if self.model_versions:
            config["resolved_models"] = {
                step_id: [v.model_name, v.id] for step_id, v in self.model_versions.items()
            }
        self._probe = EnvironmentProbe(self.artifact_store)
        environment = self._probe.basic
        # The code snapshot, now: a worker on a host without the working copy imports its
        # step's code from it (execution/snapshot.py). Taken again at the end, with what the
        # steps imported meanwhile; the files already stored are not read or written again.
        code = record_code(self.artifact_store)
        if code:
            environment["code"] = code
        version_id = pipeline_version_id(plan.spec.name, plan.spec.hash)
        record = RunRecord(
            id=plan.run_id,
            name=plan.run_name,
            pipeline_name=plan.spec.name,
            pipeline_version_id=version_id,
            # Detached: handed over (to a scheduler's tasks, an engine); running once a
            # worker takes its first step.
            status=Status.SUBMITTED if detached else Status.RUNNING,
            created_at=now,
            started_at=now,
            heartbeat_at=now,
            host=socket.gethostname(),
            pid=None if detached else os.getpid(),
            orchestrator=self.orchestrator,
            stack=self.stack.to_dict(),
            config=config,
            environment=environment,
            tags=list(plan.config.tags),
            spec_hash=plan.spec.hash,
            experiment=plan.config.experiment or plan.spec.name,
        )
        steps = [
            StepRunRecord(
                id=p.step_run_id,
                run_id=plan.run_id,
                name=p.id,
                source=p.spec.source,
                status=Status.PENDING,
                created_at=now,
                position=p.position,
                parameters=p.parameters,
            )
            for p in plan.steps.values()
        ]
        # The pipeline version's rows are written with the run, in its transaction, if new.
        self.store.create_run(record, steps, spec_json=plan.spec.to_json())
        if detached:
            return
        # Held for the whole run, so each step only switches buffers.
        logs.install()
        self._logs_installed = True
        self.monitor.start()

    def finish(self, *, error: str | None = None, interrupted: bool = False) -> str:
        """Stop what never ran, set the run's final status and return it. A metadata store
        that fails here is reported, and the run still ends in this process; if it cannot
        take the run's final status either, a StoreError says so (the stale heartbeat then
        marks the run failed)."""
        self.monitor.stop()
        if self._logs_installed:
            logs.uninstall()
            self._logs_installed = False
        try:
            self._collect_remote_outcomes()
            # Interrupted in a worker thread (still running there), or not recorded at once.
            self.skip(self.interrupted_steps, INTERRUPTED)
            never_ran = [s for s in self.plan.order if s not in self.outcomes]
            if never_ran:
                reason = (
                    "the run was interrupted"
                    if interrupted
                    else (error or "the run ended before this step ran")
                )
                self.skip(never_ran, reason)
            for outcome in self.outcomes.values():
                if not outcome.recorded:  # not left pending: ended, with what is known
                    self.store.stop_step_runs(
                        self.plan.run_id,
                        [outcome.step_id],
                        reason=redact(
                            f"the step failed ({type(outcome.error).__name__}: "
                            f"{outcome.error}) but that could not be recorded at the time"
                        ),
                        at=time.time(),
                    )
        except Exception as exc:
            logger.error(
                "could not record the steps of run %s that never ran: %s: %s",
                self.plan.run_name,
                type(exc).__name__,
                redact(str(exc)),
            )
            with self._lock:
                for step_id in self.plan.order:
                    self.outcomes.setdefault(step_id, StepOutcome(step_id, Status.STOPPED))
        statuses = {o.status for o in self.outcomes.values()}
        if interrupted:
            status = Status.STOPPED
        elif Status.FAILED in statuses or error:
            status = Status.FAILED
        elif Status.STOPPED in statuses:
            status = Status.STOPPED
        else:
            status = Status.COMPLETED
        failed = [o for o in self.outcomes.values() if o.status == Status.FAILED]
        if error is None and failed:
            error = f"step '{failed[0].step_id}' failed: {type(failed[0].error).__name__}: {failed[0].error}"
        environment = self._probe.result() if self._probe is not None else None
        if error is not None:
            error = redact(error)
        try:
            self.store.finish_run(
                self.plan.run_id,
                status=status,
                ended_at=time.time(),
                error=error,
                environment=environment,
            )
        except Exception as exc:
            raise StoreError(
                f"run {self.plan.run_name} ended {status}"
                + (f" ({error})" if error else "")
                + f", but the metadata store could not record it: {type(exc).__name__}: "
                + redact(str(exc))
            ) from exc
        return status

    def interrupted(self, step_id: str, frames: Iterable[tuple[FrameType, int]] = ()) -> None:
        """Record that the user interrupted ``step_id`` (Ctrl-C): it ends ``stopped``, not
        ``failed``. ``frames`` (outermost first) tell where its code was, for the console. A
        metadata store that fails here is reported, and ``finish`` tries again."""
        self.interrupted_steps[step_id] = step_line(self.plan.steps[step_id], frames)
        try:
            self.skip([step_id], INTERRUPTED)
        except Exception as exc:
            with self._lock:
                self.outcomes.pop(step_id, None)
            logger.error(
                "could not record that step '%s' was interrupted: %s: %s",
                step_id,
                type(exc).__name__,
                redact(str(exc)),
            )

    def interruption(self) -> str:
        """Where the run was interrupted, for the console: ``interrupted in step 'train'
        (steps.py:42)``."""
        if not self.interrupted_steps:
            return "interrupted between steps"
        where = ", ".join(
            f"'{step_id}'" + (f" ({line})" if line else "")
            for step_id, line in self.interrupted_steps.items()
        )
        return f"interrupted in step{'s' if len(self.interrupted_steps) > 1 else ''} {where}"

    @classmethod
    def attach(
        cls, run_ref: str, *, project: Project, steps: Collection[str] | None = None
    ) -> RunContext:
        """The context of a run recorded (and started) elsewhere, to launch some of its steps
        in this process: same plan, same step run ids, same stack. ``steps``: compile only
        those (only their code is imported, not the other steps'); ``add_steps`` compiles
        more later, for a worker that keeps the context from step to step."""
        from gristmill.execution.plan import compile_run
        from gristmill.options import RunConfig
        from gristmill.spec import PipelineSpec

        store = project.store()
        record = store.get_run(run_ref)
        spec = PipelineSpec.from_json(store.get_pipeline_spec(record.pipeline_version_id))
        config = RunConfig.from_dict(
            {k: v for k, v in record.config.items() if k not in RESOLVED_KEYS}
        )
        plan = compile_run(spec, config, run_id=record.id, steps=steps)
        plan.run_name = record.name
        stack = Stack.from_dict(record.stack)
        context = cls(
            plan,
            store=store,
            artifact_store=project.artifact_store(stack),
            stack=stack,
            orchestrator=record.orchestrator or "unknown",
        )
        context._recorded_inputs = record.config.get("resolved_artifacts", {})
        context._step_run_ids = {s.name: s.id for s in store.get_step_runs(record.id)}
        context._bind(plan)
        for step_id, (model_name, version_id) in record.config.get("resolved_models", {}).items():
            context.model_versions[step_id] = store.get_model_version(model_name, version_id)
        return context

    def add_steps(self, step_ids: Iterable[str]) -> None:
        """Compile more steps of an attached run (only their code imported), so that a worker
        keeping the context can launch them too."""
        from gristmill.execution.plan import compile_run

        with self._lock:
            missing = [s for s in step_ids if s not in self.plan.steps]
            if not missing:
                return
            plan = self.plan
            partial = compile_run(plan.spec, plan.config, run_id=plan.run_id, steps=missing)
            self._bind(partial)
            plan.steps.update(partial.steps)

    def _bind(self, plan: RunPlan) -> None:
        """Give an attached run's compiled steps their recorded step run ids and inputs."""
        attach_external_inputs(plan, self.store, self._recorded_inputs)
        for step_id, step_plan in plan.steps.items():
            step_plan.step_run_id = self._step_run_ids.get(step_id, step_plan.step_run_id)

    def _collect_remote_outcomes(self) -> None:
        """Steps launched by other processes (remote orchestrators) count with the status
        they recorded."""
        if len(self.outcomes) == len(self.plan.order):
            return
        for record in self.store.get_step_runs(self.plan.run_id):
            if record.name not in self.outcomes and record.status in Status.FINISHED:
                error = (
                    RuntimeError(record.error.strip().splitlines()[-1]) if record.error else None
                )
                self.outcomes[record.name] = StepOutcome(record.name, record.status, error)

    # -- what orchestrators call --------------------------------------------------------------

    def launch(self, step_id: str) -> StepOutcome:
        """Launch a step: on the step operator it names (which blocks until the step ended
        and returns what its worker recorded), else here. A process that is that operator's
        job for this step (``OPERATOR_JOB_VARIABLE``) runs it here."""
        for listener in self.listeners:
            listener.step_started(step_id=step_id)
        plan = self.plan.steps[step_id]
        name = plan.options.step_operator
        if name and os.environ.get(OPERATOR_JOB_VARIABLE) != plan.step_run_id:
            return self._launch_on_operator(step_id, name)
        return self.run_here(step_id)

    def run_here(self, step_id: str) -> StepOutcome:
        """Run a step in this process through the launcher and count its outcome (what
        ``launch`` does for a step without a step operator; an in-process operator calls it
        inside what it sets up)."""
        outcome = launch_step(self, step_id)
        with self._lock:
            self.outcomes[step_id] = outcome
        for listener in self.listeners:
            listener.step_finished(step_id=step_id, status=outcome.status)
        return outcome

    def step_operator(self, step: tuple[str, str]) -> StepOperator:
        """The stack's step operator for ``(step id, operator name)``, built once (the
        flavor's packages and settings checked); a ConfigError naming the step and the fix
        when the stack has no step operator of that name."""
        step_id, name = step
        component = self.stack.components.get("step_operator")
        if component is None or component.name != name:
            has = f"step operator '{component.name}'" if component else "no step operator"
            raise ConfigError(
                f"step '{step_id}' runs on step operator '{name}', but stack "
                f"'{self.stack.name}' has {has}: register a stack with it (`gristmill stack "
                f"register NAME -o ... -a ... -s {name}`) and run on that stack, or remove the "
                "step's step_operator option"
            )
        with self._lock:
            if self._operator is None:
                from gristmill.stacks.secrets import references

                resolve = None
                if references(component.config):
                    from gristmill.project import find_project

                    resolve = find_project().resolve
                self._operator = component.build(resolve=resolve)
            return self._operator

    def _launch_on_operator(self, step_id: str, name: str) -> StepOutcome:
        operator = self.step_operator((step_id, name))
        try:
            operator.launch(self, step_id)
        except KeyboardInterrupt:
            self.interrupted(step_id)
            raise
        except Exception as exc:  # the operator could not run it: the step fails, the run goes on
            if step_id not in self.outcomes:
                self.lost(
                    step_id,
                    f"step operator '{name}' failed: {type(exc).__name__}: {exc}",
                    attempts=1,
                )
        return self.outcomes[step_id]

    def launched_elsewhere(self, step_id: str, status: str, error: str | None = None) -> None:
        """A step a worker in another process launched (and recorded) ended with ``status``:
        the run counts it, and listeners hear of it."""
        with self._lock:
            self.outcomes[step_id] = StepOutcome(
                step_id, status, RuntimeError(error) if error else None
            )
        for listener in self.listeners:
            listener.step_finished(step_id=step_id, status=status)

    def lost(self, step_id: str, reason: str, *, attempts: int) -> None:
        """A step whose worker died under it (the process killed, the host gone): recorded
        ``failed`` with ``reason``, unless its worker recorded an outcome before it died."""
        plan = self.plan.steps[step_id]
        recorded = self.store.get_step_run(plan.step_run_id)
        if recorded.status in Status.FINISHED:
            self.launched_elsewhere(step_id, recorded.status, recorded.error)
            return
        now = time.time()
        self.store.fail_step_run(
            plan.step_run_id,
            start=StepStart(
                started_at=recorded.started_at or now,
                inputs={},
                code_hash=plan.step.code_hash,
                cache_key=None,
                parameters=plan.parameters,
            ),
            error=redact(reason),
            ended_at=now,
            attempts=attempts,
        )
        self.launched_elsewhere(step_id, Status.FAILED, reason)

    def skip(self, step_ids: Iterable[str], reason: str) -> None:
        """Mark steps that will not run (their upstream failed, or the run stopped)."""
        step_ids = [s for s in step_ids if s not in self.outcomes]
        if not step_ids:
            return
        # Known here first: if the store fails, the run still knows these will not run.
        with self._lock:
            for step_id in step_ids:
                self.outcomes[step_id] = StepOutcome(step_id, Status.STOPPED)
        self.store.stop_step_runs(self.plan.run_id, step_ids, reason=reason, at=time.time())
        for step_id in step_ids:
            for listener in self.listeners:
                listener.step_finished(step_id=step_id, status=Status.STOPPED)

    def blocked_by(self, step_id: str) -> str | None:
        """The upstream step that did not succeed, if any (then ``step_id`` cannot run)."""
        for up in sorted(self.plan.upstream(step_id)):
            outcome = self.outcomes.get(up)
            if outcome is not None and outcome.status not in Status.SUCCEEDED:
                return up
        return None

    # -- outputs ------------------------------------------------------------------------------

    def record_outputs(self, step_id: str, outputs: dict[str, ArtifactVersionRecord]) -> None:
        with self._lock:
            self._outputs[step_id] = outputs

    def output_of(self, step_id: str, output: str) -> ArtifactVersionRecord:
        """An output published earlier in this run (asked of the store when another process
        ran that step)."""
        produced = self._outputs.get(step_id)
        if produced is None:
            planned = self.plan.steps.get(step_id)  # not compiled in a worker's partial plan
            step_run_id = planned.step_run_id if planned else self._step_run_ids[step_id]
            produced = self.store.get_step_run_io([step_run_id])[step_run_id][1]
            if produced:
                self.record_outputs(step_id, produced)
        if output not in produced:
            raise NotFoundError(
                f"output '{output}' of step '{step_id}' is not in the store for run "
                f"{self.plan.run_name}: that step has not completed"
            )
        return produced[output]


def tracked_steps(plan: RunPlan) -> dict[str, str]:
    """Step id → the experiment tracker it names (``@step(experiment_tracker=...)``)."""
    found = {}
    for step_id, step_plan in plan.steps.items():
        name = step_plan.options.experiment_tracker
        if name:
            found[step_id] = str(name)
    return found


def resolved_config(
    plan: RunPlan,
    artifacts: dict[str, dict[str, str]] | None = None,
    data: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """What a run records as its configuration: what was asked for, and what it resolved to.
    Per step, only the options that differ from the defaults (cache on, no retries, logs on,
    no settings, no version): a 10,000-step run would otherwise carry megabytes of defaults.
    Each step's resolved parameters are recorded with its step run; the artifact versions its
    external inputs resolved to (step → argument → version id) under ``resolved_artifacts``;
    what DVC recorded for its DVC inputs (step → argument → path, md5, rev, git commit) under
    ``resolved_data``."""
    defaults = STEP_DEFAULTS.to_spec()
    resolved_steps = {}
    for step_id, p in plan.steps.items():
        changed = {k: v for k, v in p.options.to_spec().items() if v != defaults.get(k)}
        if changed:
            resolved_steps[step_id] = changed
    resolved = {
        **plan.config.to_dict(),
        "resolved_parameters": plan.parameters,
        "resolved_steps": resolved_steps,
    }
    if artifacts:
        resolved["resolved_artifacts"] = artifacts
    if data:
        resolved["resolved_data"] = data
    return resolved


RESOLVED_KEYS = (
    "resolved_parameters",
    "resolved_steps",
    "resolved_artifacts",
    "resolved_data",
    "resolved_models",
)


class _Monitor:
    """One background thread per run: the run's heartbeat, the ``running`` mark of steps
    still running after ``RUNNING_MARK_DELAY`` (quick steps never need that extra write), and
    the logs of those steps written every ``LIVE_LOGS_SECONDS`` while they run, so that a
    reader (``gristmill steps logs``, the dashboard) can follow them."""

    def __init__(self, store: MetadataStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._lock = threading.Lock()
        self._due: dict[str, tuple[float, float, LiveLogs | None]] = {}
        # Taken off ``_due`` by the loop and being marked now; then followed (``_live``).
        self._marking: dict[str, LiveLogs | None] = {}
        self._live: dict[str, LiveLogs] = {}
        # Held while logs are written: ``done`` waits on it, so no live write lands after
        # the step's final logs.
        self._writing = threading.Lock()
        # Periodic checks other parts hand over (a stop watch): [next due, period, poll].
        self._periodic: list[list[Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"gristmill-monitor-{self._run_id[:8]}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def every(self, seconds: float, poll: Callable[[], bool]) -> None:
        """Call ``poll`` from this thread every ``seconds`` until it returns False."""
        with self._lock:
            self._periodic.append([time.monotonic() + seconds, seconds, poll])

    def running(
        self, step_run_id: str, started_at: float, live_logs: LiveLogs | None = None
    ) -> None:
        with self._lock:
            self._due[step_run_id] = (time.monotonic() + RUNNING_MARK_DELAY, started_at, live_logs)

    def done(self, step_run_id: str) -> None:
        with self._lock:
            self._due.pop(step_run_id, None)
            marking = self._marking.pop(step_run_id, None)
            following = self._live.pop(step_run_id, None)
        if marking is not None or following is not None:
            with self._writing:
                pass  # a write of this step's logs in progress has finished

    def _loop(self) -> None:
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        next_logs = time.monotonic() + LIVE_LOGS_SECONDS
        warned_at = -MONITOR_WARNING_SECONDS
        while not self._stop.wait(RUNNING_MARK_DELAY):
            now = time.monotonic()
            with self._lock:
                ready = [(k, v[1], v[2]) for k, v in self._due.items() if v[0] <= now]
                for key, _, live_logs in ready:
                    del self._due[key]
                    self._marking[key] = live_logs
            try:
                for step_run_id, started_at, live_logs in ready:
                    uri = self._start_live_logs(step_run_id, live_logs)
                    self._store.mark_running(step_run_id, started_at=started_at, logs_uri=uri)
                if now >= next_logs:
                    next_logs = now + LIVE_LOGS_SECONDS
                    self._write_live_logs()
                self._run_periodic(now)
                if now >= next_beat:
                    # Set first: a store that fails is not asked again every tick.
                    next_beat = now + HEARTBEAT_SECONDS
                    self._store.heartbeat(self._run_id, time.time())
            except Exception as exc:
                # A missed mark or beat is not worth failing the run for, but worth saying
                # (rate-limited): without beats the run is taken for dead after a while.
                if now - warned_at >= MONITOR_WARNING_SECONDS:
                    warned_at = now
                    logger.warning(
                        "could not update run %s in the metadata store (heartbeat, running "
                        "mark, logs): %s: %s",
                        self._run_id[:12],
                        type(exc).__name__,
                        redact(str(exc)),
                    )

    def _run_periodic(self, now: float) -> None:
        with self._lock:
            due = [entry for entry in self._periodic if entry[0] <= now]
        for entry in due:
            entry[0] = now + entry[1]
            if not entry[2]():
                with self._lock:
                    self._periodic.remove(entry)

    def _start_live_logs(self, step_run_id: str, live_logs: LiveLogs | None) -> str | None:
        """Write what the step logged so far (the file readers are pointed at must exist) and
        follow it from now on; its uri, or None when the step keeps no logs."""
        with self._writing:
            with self._lock:
                if self._marking.pop(step_run_id, False) is False or live_logs is None:
                    return None  # the step has ended meanwhile, or keeps no logs
                self._live[step_run_id] = live_logs
            if not self._flush(step_run_id, live_logs):
                return None
        return live_logs.uri

    def _write_live_logs(self) -> None:
        with self._writing:
            with self._lock:
                following = list(self._live.items())
            for step_run_id, live_logs in following:
                with self._lock:
                    if step_run_id not in self._live:
                        continue
                self._flush(step_run_id, live_logs)

    def _flush(self, step_run_id: str, live_logs: LiveLogs) -> bool:
        """Write a running step's logs; on failure stop following them (its final logs are
        still saved when it ends) and say so once."""
        try:
            live_logs.flush()
            return True
        except Exception as exc:
            with self._lock:
                self._live.pop(step_run_id, None)
            logger.warning(
                "cannot write the logs of a running step to %s (they are saved when it ends): "
                "%s: %s",
                live_logs.uri,
                type(exc).__name__,
                redact(str(exc)),
            )
            return False
