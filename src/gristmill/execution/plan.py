"""Compile: PipelineSpec + run configuration → RunPlan. Every check that can be made before a
step runs is made here (graph, parameter names and types, input/output types, unknown steps in
the configuration), with messages that name the step, the argument and where it was written."""

from __future__ import annotations

import dataclasses
import json
import numbers
import threading
import typing
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gristmill._source import import_source, source_id
from gristmill.artifacts.materializers.base import converts_to, materializer_key
from gristmill.errors import (
    ConfigError,
    ParameterError,
    PipelineDefinitionError,
    describe_value,
    did_you_mean,
)
from gristmill.options import (
    INFRASTRUCTURE_SETTINGS,
    STEP_DEFAULTS,
    Retry,
    RunConfig,
    StepConfig,
    StepOptions,
)
from gristmill.spec import (
    PipelineSpec,
    StepSpec,
    check_json_type,
    check_run_name,
    json_type_of,
    referenced_param,
    unescape_literal,
)
from gristmill.steps import Step
from gristmill.store import ArtifactVersionRecord


@dataclass
class StepPlan:
    """One step invocation, resolved: the callable, its parameter values and options."""

    spec: StepSpec
    step: Step[Any]
    step_run_id: str
    position: int
    parameters: dict[str, Any]
    # Resolved: every option chosen (defaults < step < spec < run configuration).
    options: StepOptions
    output_types: dict[str, Any]
    materializers: dict[str, str]
    # Link the outputs of this earlier step run instead of running (``gristmill rerun --from``).
    reuse_from: str | None = None
    # The versions the spec's external inputs resolved to when the run started.
    external_inputs: dict[str, ArtifactVersionRecord] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def cache(self) -> bool:
        return bool(self.options.cache)

    @property
    def retries(self) -> Retry:
        return self.options.retries if isinstance(self.options.retries, Retry) else Retry()

    @property
    def enable_logs(self) -> bool:
        return bool(self.options.enable_logs)

    @property
    def settings(self) -> dict[str, Any]:
        return self.options.settings

    def result_settings(self) -> dict[str, Any]:
        """Settings that may change what the step computes (part of the cache key)."""
        return {k: v for k, v in self.settings.items() if k not in INFRASTRUCTURE_SETTINGS}


@dataclass
class RunPlan:
    run_id: str
    run_name: str
    spec: PipelineSpec
    parameters: dict[str, Any]
    config: RunConfig
    order: list[str]
    steps: dict[str, StepPlan] = field(default_factory=dict)

    def upstream(self, step_id: str) -> set[str]:
        return self.steps[step_id].spec.upstream()


def compile_run(
    spec: PipelineSpec,
    config: RunConfig | None = None,
    *,
    functions: Mapping[str, Step[Any]] | None = None,
    run_id: str | None = None,
    steps: Collection[str] | None = None,
) -> RunPlan:
    """Validate a pipeline spec against a run configuration and resolve every step, or only
    ``steps`` (only their code imported): a worker running some steps of a run compiled and
    checked whole where it started. A partial plan's ``steps`` holds only those; its ``order``
    is the whole pipeline's."""
    config = config or RunConfig()
    order = spec.validate()
    parameters = resolve_pipeline_parameters(spec, config.parameters)
    unknown_steps = set(config.steps) - {s.id for s in spec.steps}
    if unknown_steps:
        name = sorted(unknown_steps)[0]
        raise ConfigError(
            f"the run configuration has settings for step '{name}', which pipeline "
            f"'{spec.name}' does not have{did_you_mean(name, (s.id for s in spec.steps))}"
        )
    run_id = run_id or uuid.uuid4().hex
    plan = RunPlan(
        run_id=run_id,
        run_name=_run_name(config.run_name, spec.name, run_id),
        spec=spec,
        parameters=parameters,
        config=config,
        order=order,
    )
    enable_cache = True if config.enable_cache is None else config.enable_cache
    if spec.settings.get("enable_cache") is False and config.enable_cache is None:
        enable_cache = False
    for position, step_id in enumerate(order):
        if steps is not None and step_id not in steps:
            continue
        step_spec = spec.step(step_id)
        step = (functions or {}).get(step_id) or load_step(step_spec)
        plan.steps[step_id] = _plan_step(
            step_spec, step, position, run_id, parameters, config.steps.get(step_id), enable_cache
        )
    if steps is None:  # a partial plan lacks the upstream output types (checked whole before)
        for step_id in order:
            _check_input_types(plan, plan.steps[step_id])
    return plan


def load_step(step_spec: StepSpec) -> Step[Any]:
    where = f" ({step_spec.origin})" if step_spec.origin else ""
    try:
        obj = import_source(step_spec.source)
    except (ImportError, AttributeError) as exc:
        raise PipelineDefinitionError(
            f"step '{step_spec.id}'{where}: cannot import '{step_spec.source}': {exc}. Use "
            "'package.module:function' with the module importable from the working directory"
        ) from exc
    if isinstance(obj, Step):
        return obj
    if callable(obj):
        return Step(obj)
    raise PipelineDefinitionError(
        f"step '{step_spec.id}'{where}: '{step_spec.source}' is not a function"
    )


def resolve_pipeline_parameters(spec: PipelineSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Pipeline parameter values: given ones checked by name and type, defaults filled in."""
    where = f" ({spec.origin})" if spec.origin else ""
    for name in given:
        if name not in spec.parameters:
            raise ParameterError(
                f"pipeline '{spec.name}'{where} has no parameter '{name}'"
                f"{did_you_mean(name, spec.parameters)}"
            )
    resolved: dict[str, Any] = {}
    for name, param in spec.parameters.items():
        if name in given:
            resolved[name] = check_json_type(
                given[name], param.type, f"pipeline '{spec.name}' parameter '{name}'"
            )
        elif param.required:
            raise ParameterError(
                f"pipeline '{spec.name}'{where} needs a value for parameter '{name}': pass "
                f"{name}=... (or -p {name}=... on the command line)"
            )
        else:
            resolved[name] = param.default
    return resolved


_NO_CACHE = StepOptions(cache=False)
_NO_OVERRIDES = StepConfig()


def _plan_step(
    spec: StepSpec,
    step: Step[Any],
    position: int,
    run_id: str,
    pipeline_parameters: dict[str, Any],
    overrides: StepConfig | None,
    enable_cache: bool,
) -> StepPlan:
    where = f" ({spec.origin})" if spec.origin else ""
    overrides = overrides or _NO_OVERRIDES
    declared = step.inputs
    # Parameter values: spec values (with ${param} resolved), then run-config overrides.
    values: dict[str, Any] = {}
    for name, raw in {**spec.parameters, **overrides.parameters}.items():
        if name not in declared:
            raise ParameterError(
                f"step '{spec.id}'{where}: '{step.name}' has no parameter '{name}'"
                f"{did_you_mean(name, declared)}"
            )
        if name in spec.inputs or name in spec.external_inputs:
            source = (
                f"step '{spec.inputs[name].step}'"
                if name in spec.inputs
                else f"artifact {spec.external_inputs[name]}"
            )
            raise ParameterError(
                f"step '{spec.id}'{where}: '{name}' is given both as an input from {source} "
                "and as a parameter; keep one"
            )
        ref = referenced_param(raw)
        values[name] = pipeline_parameters[ref] if ref is not None else unescape_literal(raw)
    for name, value in values.items():
        annotation = declared[name].annotation
        values[name] = check_json_type(
            value, json_type_of(annotation), f"step '{spec.id}'{where}: parameter '{name}'"
        )
    for name, item in declared.items():
        if name not in values and name not in spec.inputs and name not in spec.external_inputs:
            if item.required:
                raise ParameterError(
                    f"step '{spec.id}'{where}: argument '{name}' of '{step.name}' has no value: "
                    "pass it as a parameter or connect a step output to it"
                )
            default = item.default
            try:
                json.dumps(default)
            except (TypeError, ValueError):
                continue  # a non-JSON default stays in the function, outside the cache key
            values[name] = default
    for name in spec.inputs:
        if name not in declared:
            raise ParameterError(
                f"step '{spec.id}'{where}: '{step.name}' has no argument '{name}' for the input "
                f"from step '{spec.inputs[name].step}'{did_you_mean(name, declared)}"
            )
    for name, reference in spec.external_inputs.items():
        if name not in declared:
            raise ParameterError(
                f"step '{spec.id}'{where}: '{step.name}' has no argument '{name}' for the input "
                f"from artifact {reference}{did_you_mean(name, declared)}"
            )
    options = STEP_DEFAULTS.merged(StepOptions.from_spec(spec.settings)).merged(overrides)
    if not enable_cache:
        options = options.merged(_NO_CACHE)
    options = _own_hooks(options, step.options)
    output_types = {name: out_type for name, (_, out_type) in step.output_types.items()}
    return StepPlan(
        spec=spec,
        step=step,
        step_run_id=uuid.uuid4().hex,
        position=position,
        parameters=values,
        options=options,
        output_types=output_types,
        materializers={name: materializer_key(t) for name, t in output_types.items()},
    )


def _check_input_types(plan: RunPlan, step_plan: StepPlan) -> None:
    spec = step_plan.spec
    where = f" ({spec.origin})" if spec.origin else ""
    for arg, ref in spec.inputs.items():
        produced = plan.steps[ref.step].output_types.get(ref.output, Any)
        expected = step_plan.step.inputs[arg].annotation
        if not _compatible(produced, expected):
            raise PipelineDefinitionError(
                f"step '{spec.id}'{where}: input '{arg}' expects {_type_label(expected)}, but output "
                f"'{ref.output}' of step '{ref.step}' is {_type_label(produced)}; change one of the "
                "annotations or convert in a step between them"
            )


def _compatible(produced: Any, expected: Any) -> bool:
    """Conservative: only a definite mismatch between two plain classes is an error."""
    produced = plain_class(produced)
    expected = plain_class(expected)
    if produced is None or expected is None or expected is object or produced is object:
        return True
    if expected is float and produced is int:
        return True
    try:
        if issubclass(produced, expected) or issubclass(expected, produced):
            return True
    except TypeError:
        return True
    return converts_to(produced, expected)


def returned_value_problem(value: Any, annotation: Any) -> str | None:
    """Why a value a step returned does not fit its declared output type; None when it fits or
    the annotation cannot be checked at run time (missing, ``Any``, unions, protocols)."""
    expected = plain_class(annotation)
    if expected is None or expected is object:
        return None
    if expected is float:
        fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif expected is int:
        fits = isinstance(value, numbers.Integral)
    else:
        try:
            fits = isinstance(value, expected)
        except TypeError:
            return None
    if fits:
        return None
    return f"is annotated {_type_label(annotation)} but the step returned {describe_value(value)}"


def plain_class(annotation: Any) -> type | None:
    """The class an annotation names, if it names one; None for ``Any`` and typing constructs
    (``Any`` is a class on Python 3.11+, but it means "checked at run time")."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin is not None:
        return origin if isinstance(origin, type) else None
    return annotation if isinstance(annotation, type) else None


def _type_label(annotation: Any) -> str:
    plain = plain_class(annotation)
    return plain.__name__ if plain is not None else repr(annotation)


def _own_hooks(resolved: StepOptions, declared: StepOptions) -> StepOptions:
    """The step's own hook callables where the resolved options name those same callables (a
    local function cannot be imported back by its name)."""
    own = {}
    for kind in ("on_success", "on_failure"):
        hook = getattr(declared, kind)
        if callable(hook) and getattr(resolved, kind) == source_id(hook):
            own[kind] = hook
    return dataclasses.replace(resolved, **own) if own else resolved


# The default names this process gave in the current second: a loop of runs (hundreds a
# second) would otherwise meet a name twice now and then (6 hex digits of the run id).
_named_this_second: tuple[str, set[str]] = ("", set())
_naming = threading.Lock()


def _run_name(template: str | None, pipeline: str, run_id: str) -> str:
    global _named_this_second
    now = datetime.now(timezone.utc)
    if not template:
        second = f"{now:%Y%m%d-%H%M%S}"
        name = f"{pipeline}-{second}-{run_id[:6]}"
        with _naming:
            if _named_this_second[0] != second:
                _named_this_second = (second, set())
            if name in _named_this_second[1]:
                name = f"{pipeline}-{second}-{run_id[:16]}"
            _named_this_second[1].add(name)
        return name
    try:
        name = template.format(
            pipeline=pipeline,
            date=f"{now:%Y-%m-%d}",
            time=f"{now:%H%M%S}",
            id=run_id[:8],
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"run name template {template!r} is not valid ({exc}): use the fields "
            "{pipeline}, {date}, {time} and {id}"
        ) from None
    return check_run_name(name, f"from the template {template!r}")
