"""The one way a step invocation runs, whatever orchestrator scheduled it: resolve inputs,
compute the cache key, link cached outputs on a hit, else call the function (with retries,
capturing logs), store its outputs and publish them with its metadata, then run hooks."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from gristmill._source import import_source
from gristmill.artifacts import load_artifact, save_artifact
from gristmill.errors import ConfigError, OutputTypeError, PipelineDefinitionError
from gristmill.execution.caching import cache_key
from gristmill.execution.context import StepContext, reset_context, set_context
from gristmill.execution.inputs import check_cache_hit
from gristmill.execution.logs import LiveLogs, capture_logs
from gristmill.execution.models import link_outputs
from gristmill.execution.plan import plain_class, returned_value_problem
from gristmill.store import (
    ArtifactVersionRecord,
    CacheHit,
    Entity,
    NewArtifactVersion,
    Status,
    StepStart,
)

if TYPE_CHECKING:
    from gristmill.execution.plan import StepPlan
    from gristmill.execution.run import RunContext

logger = logging.getLogger("gristmill")


def redact(text: str) -> str:
    """Secret values this process resolved never reach stored logs or errors."""
    module = sys.modules.get("gristmill.stacks.secrets")
    return module.redact(text) if module is not None else text


def _redact_value(value: Any) -> Any:
    module = sys.modules.get("gristmill.stacks.secrets")
    return module.redact_value(value) if module is not None else value


def _check_root_is_not_secret(run: RunContext) -> None:
    """Every artifact and log URI starts with the artifact store's root and is recorded in the
    metadata store for others to read: a root holding a secret value would reveal it."""
    root = run.artifact_store.root
    if redact(root) != root:
        raise ConfigError(
            f"the artifact store at {redact(root)} has a secret value in its path, and every "
            "artifact and log URI recorded in the metadata store starts with that path: keep "
            "secrets out of the path (credentials go in the store's credential settings)"
        )


_MAX_ERROR_CHARS = 20_000


@dataclass
class StepOutcome:
    step_id: str
    status: str
    error: BaseException | None = None
    # False when the metadata store could not take the step's failure (``finish`` tries again)
    recorded: bool = True


class _Progress:
    """How far a step run got: enough to record its failure wherever it happens."""

    __slots__ = ("attempts", "context", "logs", "start")

    def __init__(self, start: StepStart) -> None:
        self.start = start
        self.context: StepContext | None = None
        self.logs: io.StringIO | None = None
        self.attempts = 0


def launch_step(run: RunContext, step_id: str) -> StepOutcome:
    """Run (or reuse from cache) one step invocation of a run and record it. Whatever fails
    once the step run exists (resolving inputs, the cache lookup, the function, storing or
    publishing outputs) ends with the step run ``failed`` and its error recorded;
    KeyboardInterrupt ends it ``stopped`` (interrupted by the user) and SystemExit ``failed``,
    then both are let through."""
    plan = run.plan.steps[step_id]
    progress = _Progress(
        StepStart(
            started_at=time.time(),
            inputs={},
            code_hash=plan.step.code_hash,
            cache_key=None,
            parameters=plan.parameters,
        )
    )
    try:
        status, outputs = _launch(run, plan, progress)
    except BaseException as exc:
        run.monitor.done(plan.step_run_id)
        if isinstance(exc, KeyboardInterrupt):
            # Ctrl-C: the user stopped the step, it did not fail; no traceback is kept (its
            # logs are), and the line the step's code was at is said when the run ends.
            _record_interruption(run, plan, progress)
            run.interrupted(step_id, traceback.walk_tb(exc.__traceback__))
            raise
        recorded = _record_failure(run, plan, progress, exc)
        if not isinstance(exc, Exception):
            raise  # SystemExit: recorded, then let through
        return StepOutcome(step_id, Status.FAILED, exc, recorded)
    run.record_outputs(step_id, outputs)
    version = run.model_versions.get(step_id)
    if version is not None and outputs:
        try:
            link_outputs(run.store, plan, version, outputs)
        except Exception as exc:  # the step's outputs are published; say what is missing
            logger.error(
                "step '%s' completed, but its outputs could not be linked to model %s version "
                "%s: %s: %s",
                step_id,
                version.model_name,
                version.name or version.number,
                type(exc).__name__,
                redact(str(exc)),
            )
    if status == Status.COMPLETED:
        _run_hook(plan.options.on_success, step_id, "on_success", None, progress.context)
    return StepOutcome(step_id, status)


def _launch(
    run: RunContext, plan: StepPlan, progress: _Progress
) -> tuple[str, dict[str, ArtifactVersionRecord]]:
    """Everything up to a published outcome; raises on any failure (``launch_step`` records
    it). ``progress`` follows along so the failure is recorded with what was known."""
    store = run.store
    started = progress.start.started_at
    inputs = {arg: run.output_of(ref.step, ref.output) for arg, ref in plan.spec.inputs.items()}
    inputs.update(plan.external_inputs)  # versions of earlier runs, resolved at the run's start
    step = plan.step
    key = cache_key(
        code_hash=step.code_hash,
        version=plan.options.version,
        parameters=plan.parameters,
        input_hashes={arg: av.content_hash for arg, av in inputs.items()},
        materializers=plan.materializers,
        settings=plan.result_settings(),
    )
    progress.start = start = StepStart(
        started_at=started,
        inputs={arg: av.id for arg, av in inputs.items()},
        code_hash=step.code_hash,
        cache_key=key,
        parameters=plan.parameters,
    )
    if plan.reuse_from is not None:
        hit = store.cache_hit_of(plan.reuse_from)
        check_cache_hit(run.artifact_store, plan, hit, store.url)
        return Status.CACHED, _publish_hit(run, plan, start, hit)
    found = store.find_cached(key) if plan.cache else None
    if (
        found is not None
        and set(found.outputs) == set(plan.output_types)
        and all(run.artifact_store.exists(av.uri) for av in found.outputs.values())
    ):
        check_cache_hit(run.artifact_store, plan, found, store.url)
        return Status.CACHED, _publish_hit(run, plan, start, found)

    _check_root_is_not_secret(run)
    progress.context = context = StepContext(
        run_id=run.plan.run_id,
        run_name=run.plan.run_name,
        pipeline_name=run.plan.spec.name,
        step_name=plan.id,
        step_run_id=plan.step_run_id,
        attempt=0,
        parameters=dict(plan.parameters),
        output_names=tuple(plan.output_types),
        artifact_store_root=run.artifact_store.root,
        settings=dict(plan.settings),
        options=plan.options,
        input_versions=inputs,
        model_version_id=version.id if (version := run.model_versions.get(plan.id)) else None,
        model_factory=_model_factory(run, plan.id),
    )
    token = set_context(context)
    try:
        with capture_logs(plan.enable_logs) as log_buffer:
            progress.logs = log_buffer
            # Shown as running only if it still runs after a moment (a quick step costs one
            # write); from then on its logs are written where readers can follow them.
            run.monitor.running(plan.step_run_id, started, _live_logs(run, plan, log_buffer))
            context.tracker = _start_tracking(run, plan, context)
            kwargs = dict(plan.parameters)
            for arg, av in inputs.items():
                kwargs[arg] = load_artifact(
                    run.artifact_store,
                    av.uri,
                    av.materializer,
                    av.data_type,
                    av.content_hash,
                    as_type=plain_class(plan.step.inputs[arg].annotation),
                )
            result, progress.attempts = _call_with_retries(plan, context, kwargs)
            values = _split_outputs(plan, result)
            _check_returned(plan, values)
            new_outputs = {}
            for name, value in values.items():
                saved = save_artifact(
                    run.artifact_store, value, where=f"step '{plan.id}', output '{name}'"
                )
                context.output_uris[name] = saved.content.uri
                new_outputs[name] = NewArtifactVersion(
                    artifact_name=_artifact_name(run, plan, name),
                    uri=saved.content.uri,
                    content_hash=saved.content.content_hash,
                    materializer=saved.materializer,
                    data_type=saved.data_type,
                    size=saved.content.size,
                    preview=redact(saved.preview),
                    metadata=_redact_value(_with_tags(saved.metadata, plan, name)),
                )
            if context.tracker is not None:
                _register_models(run, plan, context, values)
                context.tracker.end(status=Status.COMPLETED)
                context.tracker = None
        run.monitor.done(plan.step_run_id)  # no live write of the logs after this
        logs_uri = _save_logs(run, plan, log_buffer.getvalue())
        published = store.publish_step_run(
            plan.step_run_id,
            start=start,
            status=Status.COMPLETED,
            ended_at=time.time(),
            outputs=new_outputs,
            metadata=context.pending_metadata,
            attempts=progress.attempts,
            logs_uri=logs_uri,
            metrics=context.pending_metrics,
        )
    except BaseException as exc:
        if context.tracker is not None:
            stopped = isinstance(exc, KeyboardInterrupt)
            context.tracker.end(status=Status.STOPPED if stopped else Status.FAILED)
            context.tracker = None
        raise
    finally:
        reset_context(token)
    return Status.COMPLETED, published


def _start_tracking(run: RunContext, plan: StepPlan, context: StepContext) -> Any:
    """The step's experiment tracker run, when its options name one (None otherwise); the
    link to it is recorded on the step run."""
    name = plan.options.experiment_tracker
    if not name:
        return None
    from gristmill.tracking.base import TrackedStep

    tracker = run.experiment_tracker((plan.id, str(name)))
    tracking = tracker.start_step(
        TrackedStep(
            component=str(name),
            run_id=run.plan.run_id,
            run_name=run.plan.run_name,
            pipeline_name=run.plan.spec.name,
            experiment=run.plan.config.experiment or run.plan.spec.name,
            step_name=plan.id,
            step_run_id=plan.step_run_id,
            parameters=_redact_value(dict(plan.parameters)),
            pipeline_parameters=_redact_value(dict(run.plan.parameters)),
        )
    )
    link = {**tracking.run.metadata, "experiment_tracker": str(name)}
    context.pending_metadata.append((Entity.STEP_RUN, plan.step_run_id, link))
    return tracking


def _register_models(
    run: RunContext, plan: StepPlan, context: StepContext, values: dict[str, Any]
) -> None:
    """Outputs marked ``is_model_artifact`` of a step with a model version, registered in the
    tracker's own registry too (when it has one and is told to)."""
    version = run.model_versions.get(plan.id)
    if version is None or context.tracker is None:
        return
    for name, value in values.items():
        declared = plan.spec.outputs.get(name)
        if declared is None or declared.artifact_kind != "model":
            continue
        link = context.tracker.register_model(name=version.model_name, value=value, output=name)
        if link is None:
            if getattr(context.tracker.tracker, "register_models", False):
                logger.warning(
                    "step '%s': output '%s' (%s) was not registered in the experiment "
                    "tracker's registry: only scikit-learn estimators are covered",
                    plan.id,
                    name,
                    type(value).__name__,
                )
            continue
        context.pending_metadata.append((Entity.STEP_RUN, plan.step_run_id, link))
        context.pending_metadata.append((Entity.MODEL_VERSION, version.id, link))


def _with_tags(metadata: dict[str, Any], plan: StepPlan, output: str) -> dict[str, Any]:
    """An output's metadata with the tags its ``ArtifactConfig`` gives."""
    declared = plan.spec.outputs.get(output)
    if declared is None or not declared.tags:
        return metadata
    return {**metadata, "tags": list(declared.tags)}


def _model_factory(run: RunContext, step_id: str) -> Any:
    """What builds ``get_step_context().model`` when a step asks for it: the step's model
    version as the Client shows it (reading through this run's stores)."""
    record = run.model_versions.get(step_id)
    if record is None:
        return None

    def build() -> Any:
        from gristmill.client import Client
        from gristmill.models.registry import ModelVersion

        return ModelVersion(Client(store=run.store, artifact_store=run.artifact_store), record)

    return build


def step_line(plan: StepPlan, frames: Iterable[tuple[FrameType, int]]) -> str | None:
    """Where the step's own code was, as ``file:line``: of ``frames`` (outermost first, as a
    traceback lists them), the innermost one from the step function's frame on that is in
    the step function's file (its helpers there count; library code does not). None when the
    step function was not running."""
    code = getattr(inspect.unwrap(plan.step.func), "__code__", None)
    if code is None:
        return None
    inside = False
    found: tuple[str, int] | None = None
    for frame, line in frames:
        inside = inside or frame.f_code is code
        if inside and frame.f_code.co_filename == code.co_filename:
            found = (frame.f_code.co_filename, line)
    if found is None:
        return None
    path = Path(found[0])
    with contextlib.suppress(ValueError, OSError):
        path = path.relative_to(Path.cwd())
    return f"{path}:{found[1]}"


def _publish_hit(
    run: RunContext, plan: StepPlan, start: StepStart, hit: CacheHit
) -> dict[str, ArtifactVersionRecord]:
    """Record a step run that links an earlier one's outputs. The metrics the earlier run
    logged describe these outputs: they come along, so the new run reports its results."""
    logged = hit.metadata
    metadata = [(Entity.STEP_RUN, plan.step_run_id, logged), (Entity.RUN, run.plan.run_id, logged)]
    return run.store.publish_step_run(
        plan.step_run_id,
        start=start,
        status=Status.CACHED,
        ended_at=time.time(),
        outputs=hit.outputs,
        attempts=0,
        cached_from=hit.step_run.id,
        metadata=metadata if logged else (),
    )


def _call_with_retries(
    plan: StepPlan, context: StepContext, kwargs: dict[str, Any]
) -> tuple[Any, int]:
    retries = plan.retries
    delay = retries.delay
    attempt = 0
    while True:
        attempt += 1
        context.attempt = attempt
        try:
            return plan.step.func(**kwargs), attempt
        except Exception as exc:
            if attempt > retries.count:
                raise
            logger.warning(
                "step '%s' failed on attempt %d of %d (%s: %s); retrying in %.3g s",
                plan.id,
                attempt,
                retries.count + 1,
                type(exc).__name__,
                exc,
                delay,
            )
            if delay:
                time.sleep(delay)
            delay *= retries.backoff


def _split_outputs(plan: StepPlan, result: Any) -> dict[str, Any]:
    names = list(plan.output_types)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = (
            f"{len(result)} values"
            if isinstance(result, (tuple, list))
            else f"a {type(result).__name__}"
        )
        raise PipelineDefinitionError(
            f"step '{plan.id}' ({plan.step.origin}) declares {len(names)} outputs "
            f"({', '.join(names)}) but returned {got}; return a tuple with one value per output"
        )
    return dict(zip(names, result, strict=True))


def _check_returned(plan: StepPlan, values: dict[str, Any]) -> None:
    for name, value in values.items():
        problem = returned_value_problem(value, plan.output_types[name])
        if problem is not None:
            raise OutputTypeError(
                f"step '{plan.id}' ({plan.step.origin}): output '{name}' {problem}; return "
                "a value of that type or change the annotation (Any accepts every value)"
            )


def _artifact_name(run: RunContext, plan: StepPlan, output: str) -> str:
    declared = plan.spec.outputs.get(output)
    if declared is not None and declared.artifact_name:
        return declared.artifact_name
    return f"{run.plan.spec.name}.{plan.id}.{output}"


def _live_logs(run: RunContext, plan: StepPlan, buffer: io.StringIO) -> LiveLogs | None:
    if not plan.enable_logs:
        return None
    uri = run.artifact_store.logs_uri(run.plan.run_id, plan.id)
    return LiveLogs(buffer, uri, lambda text: run.artifact_store.write_text(uri, redact(text)))


def _save_logs(
    run: RunContext, plan: StepPlan, text: str, failure: BaseException | None = None
) -> str | None:
    if not text:
        return None
    uri = run.artifact_store.logs_uri(run.plan.run_id, plan.id)
    try:
        run.artifact_store.write_text(uri, redact(text))
    except Exception as exc:  # logs are worth a warning, not the step's outcome
        if failure is None or str(exc) != str(failure):  # the step's own error says it all
            logger.warning("could not save the logs of step '%s': %s", plan.id, exc)
        return None
    return uri


def _record_interruption(run: RunContext, plan: StepPlan, progress: _Progress) -> None:
    """Record the step run as stopped by the user, with the logs it wrote so far; a store that
    cannot take it is left to ``RunContext.interrupted``, which tries the plain way."""
    from gristmill.execution.run import INTERRUPTED

    logs = progress.logs.getvalue() if progress.logs is not None else ""
    context = progress.context
    try:
        run.store.fail_step_run(
            plan.step_run_id,
            start=progress.start,
            error=INTERRUPTED,
            ended_at=time.time(),
            attempts=max(progress.attempts, context.attempt if context else 0),
            logs_uri=_save_logs(run, plan, logs, None) if logs else None,
            metadata=[]
            if context is None
            else [m for m in context.pending_metadata if m[0] != Entity.ARTIFACT_VERSION],
            status=Status.STOPPED,
            metrics=context.pending_metrics if context is not None else (),
        )
    except Exception as exc:
        logger.debug("could not record the interruption of step '%s': %s", plan.id, exc)


def _record_failure(
    run: RunContext, plan: StepPlan, progress: _Progress, exc: BaseException
) -> bool:
    """Record the step run as failed with its error (and the logs it wrote); False if the
    metadata store could not take it either: that is said on the console, and the run still
    ends (``RunContext.finish``)."""
    context = progress.context
    attempts = max(progress.attempts, context.attempt, 1) if context is not None else 0
    error = redact("".join(traceback.format_exception(exc))[-_MAX_ERROR_CHARS:])
    logs = progress.logs.getvalue() if progress.logs is not None else ""
    logs_uri = _save_logs(
        run, plan, logs + ("\n" if logs and not logs.endswith("\n") else "") + error, exc
    )
    try:
        run.store.fail_step_run(
            plan.step_run_id,
            start=progress.start,
            error=error,
            ended_at=time.time(),
            attempts=attempts,
            logs_uri=logs_uri,
            metadata=[]
            if context is None
            else [m for m in context.pending_metadata if m[0] != Entity.ARTIFACT_VERSION],
            metrics=context.pending_metrics if context is not None else (),
        )
        recorded = True
    except Exception as record_exc:
        recorded = False
        logger.error(
            "step '%s' failed (%s: %s) and that could not be recorded in the metadata store: "
            "%s: %s",
            plan.id,
            type(exc).__name__,
            redact(str(exc)),
            type(record_exc).__name__,
            redact(str(record_exc)),
        )
    if isinstance(exc, Exception):
        _run_hook(plan.options.on_failure, plan.id, "on_failure", exc, context)
    return recorded


def _run_hook(
    hook: Any,
    step_id: str,
    kind: str,
    exc: BaseException | None,
    context: StepContext | None,
) -> None:
    if hook is None:
        return
    # A hook sees the step's context, as the step did.
    token = set_context(context) if context is not None else None
    try:
        function = import_source(hook) if isinstance(hook, str) else hook
        wants_error = exc is not None and _takes_an_argument(function)
        function(exc) if wants_error else function()
    except Exception:
        # A hook must not change the step's outcome; its failure is reported loudly instead.
        logger.exception("the %s hook of step '%s' raised", kind, step_id)
    finally:
        if token is not None:
            reset_context(token)


def _takes_an_argument(function: Any) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )
