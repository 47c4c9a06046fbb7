"""``@pipeline``: tracing a pipeline function into a PipelineSpec, and calling it (compile,
run on the active stack, return the tracked Run).

While the function body runs under tracing, each step call records an invocation and returns
placeholders for its outputs; pipeline parameters are traced too, so a step parameter fed
straight from a pipeline parameter is recorded as ``${name}`` (the spec stays the same for
every value, and exports to YAML as written).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from gristmill._source import source_id
from gristmill.errors import (
    ParameterError,
    PipelineDefinitionError,
    RunFailedError,
    describe_value,
    did_you_mean,
)
from gristmill.models.definition import Model
from gristmill.options import RunConfig, StepConfig, validated
from gristmill.spec import (
    DVCPath,
    ExternalArtifact,
    ExternalInput,
    InputRef,
    ParameterSpec,
    PipelineSpec,
    StepSpec,
    check_pipeline_name,
    ensure_json,
    escape_literal,
    json_type_of,
    param_ref,
    referenced_param,
)
from gristmill.steps import Step, active_tracer, reset_tracer, set_tracer

if TYPE_CHECKING:
    # Defining pipelines needs none of these; running one does (imported then).
    from gristmill.client import Run
    from gristmill.execution import RunListener
    from gristmill.execution.plan import RunPlan

F = TypeVar("F", bound=Callable[..., Any])


# -- placeholders returned while tracing -------------------------------------------------------


@dataclass(frozen=True)
class OutputRef:
    """A placeholder for one output of a step invocation while a pipeline is traced."""

    step_id: str
    name: str
    origin: str

    def _misuse(self, what: str) -> NoReturn:
        raise PipelineDefinitionError(
            f"{self.origin}: {what} on the output '{self.name}' of step '{self.step_id}': while a "
            "pipeline is defined, step outputs are placeholders; their values exist only when the "
            "step runs. Pass the output to another step and do this work inside that step"
        )

    def __bool__(self) -> bool:  # noqa: PLE0304 - it never returns: a truth test is an error
        self._misuse("a truth test (if/while/and/or)")

    def __iter__(self) -> Iterator[Any]:
        self._misuse("unpacking or iterating (the step has one output)")

    def __getitem__(self, key: Any) -> Any:
        self._misuse(f"indexing [{key!r}] (the step has one output)")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        self._misuse(f"reading the attribute '.{attribute}'")


class StepOutputs(tuple):  # type: ignore[type-arg]
    """The outputs of a step with several: unpack it (``a, b = split(df)``) or pick one by
    name (``split(df)["train"]``)."""

    step_id: str
    names: tuple[str, ...]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self.names:
                raise PipelineDefinitionError(
                    f"step '{self.step_id}' has no output '{key}'{did_you_mean(key, self.names)}"
                )
            return super().__getitem__(self.names.index(key))
        return super().__getitem__(key)


@dataclass(frozen=True)
class Invocation:
    """What calling a step with no outputs returns: usable in another step's ``after=``."""

    step_id: str


def _make_outputs(step_id: str, names: list[str], origin: str) -> Any:
    if not names:
        return Invocation(step_id)
    refs = [OutputRef(step_id, name, origin) for name in names]
    if len(refs) == 1:
        return refs[0]
    outputs = StepOutputs(refs)
    outputs.step_id = step_id
    outputs.names = tuple(names)
    return outputs


# -- traced pipeline parameters ------------------------------------------------------------------

_TRACEABLE = (int, float, str, list, dict)
_traced_classes: dict[type, type] = {}


def _traced(value: Any, name: str) -> Any:
    """The value, marked as pipeline parameter ``name`` (bools and None cannot be subclassed
    and are recorded by value)."""
    base = type(value)
    if base not in _TRACEABLE:
        return value
    cls = _traced_classes.get(base)
    if cls is None:
        probes = {name: _probe(base, name) for name in _BRANCHING if hasattr(base, name)}
        cls = type(f"Traced{base.__name__.title()}", (base,), probes)
        _traced_classes[base] = cls
    marked = cls(value)
    marked._gristmill_param = name
    return marked


# What a pipeline body does with a parameter when its graph depends on the value: a truth test,
# a comparison, a membership test. Recorded, so export can say the graph is not fixed.
_BRANCHING = (
    "__bool__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__contains__",
)


def _probe(base: type, name: str) -> Any:
    original = getattr(base, name)

    def probe(self: Any, *args: Any) -> Any:
        tracer = active_tracer()
        if isinstance(tracer, _Tracer):
            tracer.branched_on.add(self._gristmill_param)
        return original(self, *args)

    return probe


def _parameter_of(value: Any) -> str | None:
    return (
        getattr(value, "_gristmill_param", None)
        if type(value) in _traced_classes.values()
        else None
    )


def _plain(value: Any) -> Any:
    base = next((b for b, c in _traced_classes.items() if type(value) is c), None)
    return base(value) if base is not None else value


def parameter_placeholder(value: Any, name: str) -> Any:
    """A value standing for pipeline parameter ``name`` while a pipeline is traced."""
    return _traced(value, name)


def trace_inline(
    inner: Pipeline[Any], arguments: Mapping[str, Any], *, taken: set[str], pipeline_name: str
) -> tuple[list[StepSpec], dict[str, Step[Any]], Any]:
    """The steps ``inner`` adds when called with ``arguments`` inside a pipeline whose step ids
    ``taken`` are already used, and what the call returns (YAML ``uses:`` of a pipeline)."""
    tracer = _Tracer(pipeline_name)
    tracer.taken = set(taken)
    token = set_tracer(tracer)
    try:
        returned = inner.inline(**arguments)
    finally:
        reset_tracer(token)
    return tracer.steps, tracer.functions, returned


# -- tracing -------------------------------------------------------------------------------------


class _Tracer:
    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.steps: list[StepSpec] = []
        self.taken: set[str] = set()
        self.next_suffix: dict[str, int] = {}
        self.functions: dict[str, Step[Any]] = {}
        self.outputs: dict[str, list[str]] = {}
        # Parameters the body tested or compared: the graph may depend on their values.
        self.branched_on: set[str] = set()

    def record(
        self, step: Step[Any], args: tuple[Any, ...], kwargs: dict[str, Any], origin: str
    ) -> Any:
        step_id = kwargs.pop("id", None)
        after = kwargs.pop("after", None)
        try:
            bound = step._signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            unknown = [k for k in kwargs if k not in step.inputs]
            hint = did_you_mean(unknown[0], step.inputs) if unknown else ""
            raise ParameterError(f"{origin}: calling step '{step.name}': {exc}{hint}") from None
        step_id = self._invocation_id(step, step_id, origin)
        parameters: dict[str, Any] = {}
        inputs: dict[str, InputRef] = {}
        external: dict[str, ExternalInput] = {}
        for arg, value in bound.arguments.items():
            if isinstance(value, OutputRef):
                inputs[arg] = InputRef(value.step_id, value.name)
            elif (reference := _external_artifact(value)) is not None:
                external[arg] = reference
            elif isinstance(value, StepOutputs):
                raise PipelineDefinitionError(
                    f"{origin}: argument '{arg}' of step '{step_id}' gets all {len(value)} outputs "
                    f"of step '{value.step_id}' ({', '.join(value.names)}); pass one of them, e.g. "
                    f'{value.step_id}(...)["{value.names[0]}"], or unpack them first'
                )
            elif isinstance(value, Invocation):
                raise PipelineDefinitionError(
                    f"{origin}: argument '{arg}' of step '{step_id}' gets step '{value.step_id}', "
                    "which has no outputs; use after=... to order steps without passing data"
                )
            elif _parameter_of(value) is not None:
                parameters[arg] = param_ref(str(_parameter_of(value)))
            else:
                if _contains_placeholder(value):
                    raise PipelineDefinitionError(
                        f"{origin}: argument '{arg}' of step '{step_id}' holds step outputs inside "
                        f"a {type(value).__name__}; pass each output to its own argument"
                    )
                ensure_json(_plain(value), f"{origin}: parameter '{arg}' of step '{step_id}'")
                parameters[arg] = escape_literal(json.loads(json.dumps(_plain(value))))
        spec = StepSpec(
            id=step_id,
            source=step.source,
            parameters=parameters,
            inputs=inputs,
            after=self._after(after, step_id, origin),
            outputs=step.outputs,
            settings=step.options.to_spec(),
            origin=origin,
            external_inputs=external,
        )
        self.steps.append(spec)
        self.taken.add(step_id)
        self.functions[step_id] = step
        return _make_outputs(step_id, list(step.outputs), origin)

    def _invocation_id(self, step: Step[Any], explicit: Any, origin: str) -> str:
        taken = self.taken
        if explicit is not None:
            if not isinstance(explicit, str):
                raise PipelineDefinitionError(f"{origin}: id= must be a string, got {explicit!r}")
            if explicit in taken:
                raise PipelineDefinitionError(
                    f"{origin}: a step with id '{explicit}' is already in pipeline "
                    f"'{self.pipeline_name}'; give this invocation another id"
                )
            return explicit
        if step.name not in taken:
            return step.name
        n = self.next_suffix.get(step.name, 2)
        while f"{step.name}_{n}" in taken:
            n += 1
        self.next_suffix[step.name] = n + 1
        return f"{step.name}_{n}"

    def _after(self, after: Any, step_id: str, origin: str) -> list[str]:
        if after is None:
            return []
        items = (
            after
            if isinstance(after, (list, tuple)) and not isinstance(after, StepOutputs)
            else [after]
        )
        ids = []
        for item in items:
            if isinstance(item, (OutputRef, StepOutputs, Invocation)):
                ids.append(item.step_id)
            elif isinstance(item, str):
                ids.append(item)
            elif isinstance(item, Step):
                ids.append(item.name)
            else:
                raise PipelineDefinitionError(
                    f"{origin}: after= of step '{step_id}' takes step outputs, step ids or steps, "
                    f"not {describe_value(item)}"
                )
        return sorted(set(ids))


def _external_artifact(value: Any) -> ExternalInput | None:
    """The reference an argument holds to an artifact version of an earlier run (an
    ExternalArtifact, or an ArtifactVersion read with the Client, recorded by its id) or to
    DVC-tracked data (a DVCPath)."""
    if isinstance(value, (ExternalArtifact, DVCPath)):
        return value
    client = sys.modules.get("gristmill.client")  # no ArtifactVersion exists before it loads
    if client is not None and isinstance(value, client.ArtifactVersion):
        return ExternalArtifact(id=value.id)
    return None


def _contains_placeholder(value: Any) -> bool:
    if isinstance(value, (OutputRef, StepOutputs, Invocation)):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(_contains_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_placeholder(v) for v in value.values())
    return False


# -- the pipeline --------------------------------------------------------------------------------


class Pipeline(Generic[F]):
    """A pipeline: calling it runs it and returns the tracked :class:`~gristmill.Run`."""

    # Parameters the last trace saw the body test or compare (see graph_parameters).
    _branched_on: frozenset[str] = frozenset()
    # Parameters the last trace could not follow (bools, None): never reported as unused.
    _untraced: frozenset[str] = frozenset()

    def __init__(self, func: F, *, name: str, config: RunConfig) -> None:
        self.func = func
        self._name = check_pipeline_name(name, _where(func))
        self.config = config
        functools.update_wrapper(self, func)
        self._signature = inspect.signature(func)
        for p in self._signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"pipeline '{name}' ({_where(func)}): *{p.name} is not supported; "
                    "give every pipeline parameter a name"
                )

    @property
    def name(self) -> str:
        return self._name

    @property
    def stack_name(self) -> str | None:
        """The stack chosen for this pipeline (``with_options(stack=...)``, YAML ``stack:``)."""
        return self.config.stack

    @property
    def orchestrator_options(self) -> dict[str, Any] | None:
        """The orchestrator chosen with ``with_options(orchestrator=...)``, if any."""
        return dict(self.config.orchestrator) if self.config.orchestrator else None

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({source_id(self.func)})>"

    @functools.cached_property
    def parameters(self) -> dict[str, ParameterSpec]:
        import typing

        try:
            hints = typing.get_type_hints(self.func)
        except Exception:
            hints = {}
        result = {}
        for p in self._signature.parameters.values():
            required = p.default is inspect.Parameter.empty
            default = None if required else p.default
            if not required:
                ensure_json(
                    default,
                    f"pipeline '{self.name}' ({_where(self.func)}): default of parameter '{p.name}'",
                )
            result[p.name] = ParameterSpec(
                type=json_type_of(hints.get(p.name)), default=default, required=required
            )
        return result

    def with_options(
        self,
        *,
        name: str | None = None,
        enable_cache: bool | None = None,
        run_name: str | None = None,
        tags: list[str] | None = None,
        experiment: str | None = None,
        settings: dict[str, Any] | None = None,
        steps: Mapping[str, StepConfig | Mapping[str, Any]] | None = None,
        orchestrator: str | Mapping[str, Any] | None = None,
        config: RunConfig | str | os.PathLike[str] | None = None,
        stack: str | None = None,
        model: Model | str | None = None,
    ) -> Pipeline[F]:
        """A copy with run options changed. ``steps`` maps step ids to overrides (cache,
        retries, settings, enable_logs, parameters); ``orchestrator`` picks the orchestrator for
        these runs (``"local_parallel"`` or ``{"flavor": "local_parallel", "max_workers": 8}``);
        ``stack`` runs them on that stack instead of the active one; ``experiment`` groups
        them under that name (default: the pipeline's); ``model`` (a ``gristmill.Model``) is
        the model whose version the runs create or use; ``config`` is a RunConfig or a run
        configuration file, which the other arguments override."""
        if config is not None and not isinstance(config, RunConfig):
            from gristmill.config_file import load_run_config

            config = load_run_config(os.fspath(config))
        if isinstance(orchestrator, str):
            orchestrator = {"flavor": orchestrator}
        change = RunConfig(
            enable_cache=enable_cache,
            run_name=run_name,
            tags=list(tags or []),
            experiment=experiment,
            steps={
                k: v
                if isinstance(v, StepConfig)
                else validated(StepConfig, dict(v), where=f"with_options: steps.{k}")
                for k, v in (steps or {}).items()
            },
            settings=dict(settings or {}),
            orchestrator=dict(orchestrator) if orchestrator is not None else None,
            stack=stack,
            model=model,
        )
        return self._with(name or self.name, self.config.merged(config).merged(change))

    def _with(self, name: str, config: RunConfig) -> Pipeline[F]:
        return Pipeline(self.func, name=name, config=config)

    # -- definition ---------------------------------------------------------------------------

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The parameter values a call gives, by name."""
        unknown = [k for k in kwargs if k not in self._signature.parameters]
        if unknown:
            raise ParameterError(
                f"pipeline '{self.name}' ({_where(self.func)}) has no parameter '{unknown[0]}'"
                f"{did_you_mean(unknown[0], self._signature.parameters)}"
            )
        try:
            bound = self._signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"pipeline '{self.name}' ({_where(self.func)}): {exc}") from None
        return dict(bound.arguments)

    def trace(
        self, parameters: Mapping[str, Any] | None = None
    ) -> tuple[PipelineSpec, dict[str, Step[Any]]]:
        """Run the pipeline body with placeholders: its spec and the step objects it used."""
        values = {name: p.default for name, p in self.parameters.items() if not p.required}
        values.update(parameters or {})
        for name, p in self.parameters.items():
            if name not in values:
                values[name] = None if p.type == "any" else _placeholder_for(p.type)
        tracer = _Tracer(self.name)
        token = set_tracer(tracer)
        try:
            self.func(**{k: _traced(v, k) for k, v in values.items()})
        finally:
            reset_tracer(token)
        if not tracer.steps:
            raise PipelineDefinitionError(
                f"pipeline '{self.name}' ({_where(self.func)}) calls no steps: call @step "
                "functions inside its body"
            )
        settings = {"enable_cache": False} if self.config.enable_cache is False else {}
        spec = PipelineSpec(
            name=self.name,
            steps=tracer.steps,
            parameters=dict(self.parameters),
            settings=settings,
            origin=_where(self.func),
        )
        self._branched_on = frozenset(tracer.branched_on)
        # Bools and None cannot be marked as parameters: where they went is not known.
        self._untraced = frozenset(k for k, v in values.items() if type(v) not in _TRACEABLE)
        return spec, tracer.functions

    def spec(self, **parameters: Any) -> PipelineSpec:
        return self.trace(parameters)[0]

    def graph_parameters(self, parameters: Mapping[str, Any] | None = None) -> list[str]:
        """The parameters whose values change which steps run or how they connect: those the
        body tests or compares while traced, and bools (recorded by value) whose flip changes
        the steps or their connections (a flip that only changes a step's argument is a value
        passed along, not a branch: see ``bool_references``)."""
        spec = self.trace(parameters)[0]
        found = set(self._branched_on)
        for name, flipped in self._flipped_bools(parameters):
            if name not in found and _graph_of(flipped) != _graph_of(spec):
                found.add(name)
        return sorted(found)

    def bool_references(self, parameters: Mapping[str, Any] | None = None) -> dict[str, str]:
        """``"step.argument" -> parameter`` for the step arguments a bool pipeline parameter
        reaches. Bools cannot be marked while traced (they are recorded by value), so they are
        found by tracing again with the value flipped: an argument that flips with it is it."""
        spec = self.trace(parameters)[0]
        found: dict[str, str] = {}
        for name, flipped in self._flipped_bools(parameters):
            if _graph_of(flipped) != _graph_of(spec):
                continue
            for before, after in zip(spec.steps, flipped.steps, strict=True):
                for arg, value in before.parameters.items():
                    if isinstance(value, bool) and after.parameters.get(arg) is (not value):
                        found[f"{before.id}.{arg}"] = name
        return found

    def _flipped_bools(
        self, parameters: Mapping[str, Any] | None
    ) -> Iterator[tuple[str, PipelineSpec]]:
        values = {name: p.default for name, p in self.parameters.items() if not p.required}
        values.update(parameters or {})
        for name, value in values.items():
            if isinstance(value, bool):
                yield name, self.trace({**values, name: not value})[0]

    def compile(self, *args: Any, **kwargs: Any) -> RunPlan:
        """Everything calling the pipeline checks, without running anything."""
        from gristmill.execution import compile_run

        given = self.bind(*args, **kwargs)
        spec, functions = self.trace(given)
        _warn_unused_parameters(spec, self._branched_on | self._untraced)
        return compile_run(
            spec, self.config.merged(RunConfig(parameters=given)), functions=functions
        )

    def inline(self, *args: Any, **kwargs: Any) -> Any:
        """What calling this pipeline inside another pipeline's body does: its steps join that
        pipeline (their ids made unique there) and its outputs — what its body returns — are
        returned, to pass to the outer pipeline's steps. Arguments may be the outer pipeline's
        parameters, step outputs or plain values; its own run options do not apply."""
        given = self.bind(*args, **kwargs)
        values = {name: p.default for name, p in self.parameters.items() if not p.required}
        values.update(given)
        missing = [name for name in self.parameters if name not in values]
        if missing:
            raise ParameterError(
                f"pipeline '{self.name}' ({_where(self.func)}) is called inside another pipeline "
                f"without a value for its parameter '{missing[0]}': pass {missing[0]}=..."
            )
        return self.func(**values)

    # -- running ------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        from gristmill.steps import active_tracer

        if active_tracer() is not None:
            return self.inline(*args, **kwargs)  # type: ignore[no-any-return]
        plan = self.compile(*args, **kwargs)
        return execute(plan, orchestrator=self.orchestrator_options, stack_name=self.config.stack)


REAP_INTERVAL_SECONDS = 5.0
_last_reaped: dict[str, float] = {}


def execute(
    plan: RunPlan,
    *,
    orchestrator: Mapping[str, Any] | None = None,
    listeners: Sequence[RunListener] = (),
    stack_name: str | None = None,
) -> Run:
    """Run a compiled plan on a stack (the active one unless ``stack_name``) and return the
    tracked run; raises RunFailedError (with ``.run``) when a step failed."""
    import time

    from gristmill.client import Client, Run
    from gristmill.execution import RunContext
    from gristmill.project import find_project
    from gristmill.store import Status

    project = find_project()
    store = project.store(create=True)  # the first run creates the project
    now = time.time()
    if now - _last_reaped.get(store.url, 0.0) > REAP_INTERVAL_SECONDS:
        # A loop of runs need not look for dead runs every time (reads never do; Client.reap_dead_runs).
        store.reap_dead_runs(now)
        _last_reaped[store.url] = now
    stack = project.stack(stack_name)
    if orchestrator is not None:
        from gristmill.stacks import Component

        # Built like every other component (flavors.instantiate): the flavor's packages and
        # settings are checked before anything runs.
        stack = stack.with_component(Component.from_options("orchestrator", orchestrator))
    runner = project.orchestrator(stack)
    context = RunContext(
        plan,
        store=store,
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator=runner.flavor,
        listeners=listeners,
    )
    status = runner.run(context)
    run = Run(Client(project=project), store.get_run(plan.run_id))
    if status == Status.FAILED:
        failed = [o for o in context.outcomes.values() if o.status == Status.FAILED]
        message = f"run {plan.run_name} failed"
        if failed:
            first = failed[0]
            message += (
                f": step '{first.step_id}' raised {type(first.error).__name__}: {first.error}"
            )
        raise RunFailedError(message, run) from (failed[0].error if failed else None)
    return run


def _graph_of(spec: PipelineSpec) -> list[tuple[Any, ...]]:
    """The shape of a pipeline: its steps, what they run and how they connect (no values)."""
    return [
        (s.id, s.source, sorted((k, str(v)) for k, v in s.inputs.items()), sorted(s.after))
        for s in spec.steps
    ]


def _warn_unused_parameters(spec: PipelineSpec, known_used: frozenset[str]) -> None:
    used = {
        referenced_param(value)
        for step_spec in spec.steps
        for value in step_spec.parameters.values()
    }
    unused = sorted(set(spec.parameters) - used - known_used)
    if unused:
        import logging

        logging.getLogger("gristmill").warning(
            "pipeline '%s' (%s): parameter(s) %s reach no step and do not change the graph; "
            "pass them to a step or remove them",
            spec.name,
            spec.origin,
            ", ".join(unused),
        )


def _placeholder_for(type_name: str) -> Any:
    return {"int": 0, "float": 0.0, "str": "", "bool": False, "list": [], "dict": {}}.get(type_name)


def _where(func: Any) -> str:
    code = getattr(func, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "<unknown>"


@overload
def pipeline(func: F, /) -> Pipeline[F]: ...


@overload
def pipeline(
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    run_name: str | None = None,
    tags: list[str] | None = None,
    experiment: str | None = None,
    settings: dict[str, Any] | None = None,
    model: Model | str | None = None,
) -> Callable[[F], Pipeline[F]]: ...


def pipeline(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    run_name: str | None = None,
    tags: list[str] | None = None,
    experiment: str | None = None,
    settings: dict[str, Any] | None = None,
    model: Model | str | None = None,
) -> Pipeline[F] | Callable[[F], Pipeline[F]]:
    """Make a function a pipeline: its body calls steps, passing outputs to inputs; its
    parameters are the pipeline's parameters. Calling the pipeline runs it and returns a Run.

    ``enable_cache=False`` turns caching off for every step; ``run_name`` is a template with
    ``{pipeline}``, ``{date}``, ``{time}`` and ``{id}``; ``experiment`` groups its runs under
    that name for comparison (default: the pipeline's name). ``model`` (a
    ``gristmill.Model``) links every run's outputs to a version of that model:
    ``Model("clf")`` creates the next version at each run, ``Model("clf",
    version="production")`` uses the version in that stage.
    """

    def decorate(f: F) -> Pipeline[F]:
        config = RunConfig(
            enable_cache=enable_cache,
            run_name=run_name,
            tags=list(tags or []),
            experiment=experiment,
            settings=dict(settings or {}),
            model=model,
        )
        return Pipeline(f, name=name or f.__name__, config=config)

    if func is not None:
        return decorate(func)
    return decorate
