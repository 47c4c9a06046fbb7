"""``@step``: reads a function's signature and type hints, holds its options, and hands
invocations to a pipeline being traced. Outside a pipeline the step is just the function.

This module knows nothing of storage or execution.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from gristmill._source import code_hash, source_id
from gristmill.errors import PipelineDefinitionError
from gristmill.models.definition import ArtifactConfig, Model
from gristmill.options import Hook, Resources, Retry, StepOptions
from gristmill.spec import OutputSpec

F = TypeVar("F", bound=Callable[..., Any])
RESERVED_ARGUMENTS = ("id", "after")
DEFAULT_OUTPUT = "output"


@dataclass(frozen=True)
class StepInput:
    name: str
    annotation: Any
    default: Any
    required: bool


class StepTracer(typing.Protocol):
    """What a pipeline being traced implements to receive step invocations."""

    def record(
        self, step: Step[Any], args: tuple[Any, ...], kwargs: dict[str, Any], origin: str
    ) -> Any: ...


_tracer: contextvars.ContextVar[StepTracer | None] = contextvars.ContextVar(
    "gristmill_tracer", default=None
)


def active_tracer() -> StepTracer | None:
    return _tracer.get()


def set_tracer(tracer: StepTracer | None) -> contextvars.Token[StepTracer | None]:
    return _tracer.set(tracer)


def reset_tracer(token: contextvars.Token[StepTracer | None]) -> None:
    _tracer.reset(token)


class Step(Generic[F]):
    """A step: the plain function plus its options. Calling it outside a pipeline calls the
    function; inside a pipeline body it records an invocation and returns output handles."""

    def __init__(self, func: F, *, name: str | None = None, options: StepOptions | None = None):
        if not callable(func) or inspect.isclass(func):
            raise PipelineDefinitionError(f"@step needs a function, got {func!r}")
        if inspect.iscoroutinefunction(func) or inspect.isgeneratorfunction(func):
            raise PipelineDefinitionError(
                f"step '{func.__qualname__}' ({_where(func)}) is async or a generator: "
                "steps must be plain functions that return their outputs"
            )
        self.func = func
        self.name = name or func.__name__
        self.options = options or StepOptions()
        functools.update_wrapper(self, func)
        self._signature = inspect.signature(func)
        for p in self._signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"step '{self.name}' ({_where(func)}): *{p.name} is not supported: "
                    "give every input and parameter its own name"
                )
            if p.name in RESERVED_ARGUMENTS:
                raise PipelineDefinitionError(
                    f"step '{self.name}' ({_where(func)}): the argument name '{p.name}' is "
                    f"reserved for invocations ({', '.join(RESERVED_ARGUMENTS)}); rename it"
                )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = _tracer.get()
        if tracer is None:
            return self.func(*args, **kwargs)
        caller = sys._getframe(1)
        origin = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        return tracer.record(self, args, kwargs, origin)

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.source})>"

    def with_options(
        self,
        *,
        name: str | None = None,
        cache: bool | None = None,
        retries: Retry | int | None = None,
        on_success: Hook | None = None,
        on_failure: Hook | None = None,
        settings: dict[str, Any] | None = None,
        enable_logs: bool | None = None,
        version: str | None = None,
        model: Model | str | None = None,
        resources: Resources | Mapping[str, Any] | None = None,
        step_operator: str | None = None,
        experiment_tracker: str | None = None,
    ) -> Step[F]:
        """A copy with the options given changed (``settings`` merge key by key)."""
        change = StepOptions(
            cache=cache,
            retries=retries,
            on_success=on_success,
            on_failure=on_failure,
            settings=dict(settings or {}),
            enable_logs=enable_logs,
            version=version,
            model=model,
            resources=resources,  # type: ignore[arg-type]  # a mapping is made Resources
            step_operator=step_operator,
            experiment_tracker=experiment_tracker,
        )
        return Step(self.func, name=name or self.name, options=self.options.merged(change))

    # -- what the function declares -----------------------------------------------------------

    @property
    def source(self) -> str:
        return source_id(self.func)

    @property
    def origin(self) -> str:
        return _where(self.func)

    @functools.cached_property
    def code_hash(self) -> str:
        return code_hash(self.func)

    @functools.cached_property
    def type_hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.func, include_extras=True)
        except Exception as exc:
            raise PipelineDefinitionError(
                f"step '{self.name}' ({self.origin}): its type hints cannot be resolved ({exc}); "
                "make every name in the annotations importable at module level"
            ) from exc

    @functools.cached_property
    def inputs(self) -> dict[str, StepInput]:
        hints = self.type_hints
        return {
            p.name: StepInput(
                name=p.name,
                annotation=hints.get(p.name, Any),
                default=p.default,
                required=p.default is inspect.Parameter.empty,
            )
            for p in self._signature.parameters.values()
        }

    @functools.cached_property
    def outputs(self) -> dict[str, OutputSpec]:
        """Output name → OutputSpec, from the return annotation."""
        return {name: spec for name, (spec, _) in self.output_types.items()}

    @functools.cached_property
    def output_types(self) -> dict[str, tuple[OutputSpec, Any]]:
        if "return" not in self.type_hints:
            return {DEFAULT_OUTPUT: (OutputSpec(), Any)}
        declared = self.type_hints["return"]
        if declared is None or declared is type(None):
            return {}
        if typing.get_origin(declared) is tuple:
            members = typing.get_args(declared)
            if members and members[-1] is not Ellipsis and members != ((),):
                result: dict[str, tuple[OutputSpec, Any]] = {}
                for index, member in enumerate(members):
                    out_name, out_type = _output_name(member, f"{DEFAULT_OUTPUT}_{index}")
                    if out_name in result:
                        raise PipelineDefinitionError(
                            f"step '{self.name}' ({self.origin}) declares the output "
                            f"'{out_name}' twice: give each output of the tuple its own name"
                        )
                    result[out_name] = self._output(out_name, out_type, member)
                return result
        out_name, out_type = _output_name(declared, DEFAULT_OUTPUT)
        return {out_name: self._output(out_name, out_type, declared)}

    def _output(self, name: str, out_type: Any, declared: Any) -> tuple[OutputSpec, Any]:
        named = typing.get_origin(declared) is typing.Annotated
        configs = (
            [e for e in typing.get_args(declared)[1:] if isinstance(e, ArtifactConfig)]
            if named
            else []
        )
        config = configs[0] if configs else None
        explicit = named and any(
            isinstance(e, str) or (isinstance(e, ArtifactConfig) and e.name)
            for e in typing.get_args(declared)[1:]
        )
        spec = OutputSpec(
            type=type_name(out_type),
            artifact_name=name if explicit else None,
            artifact_kind=config.kind if config is not None else None,
            tags=config.tags if config is not None else (),
        )
        return spec, out_type


def _output_name(annotation: Any, default: str) -> tuple[str, Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        names = [e for e in extras if isinstance(e, str)]
        names += [e.name for e in extras if isinstance(e, ArtifactConfig) and e.name]
        if names:
            if not names[0].isidentifier():
                raise PipelineDefinitionError(
                    f"output name {names[0]!r} is not a valid identifier: use letters, digits "
                    "and '_'"
                )
            return names[0], base
        return default, base
    return default, annotation


def type_name(annotation: Any) -> str:
    if annotation is Any:
        return "typing.Any"
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation)


def _where(func: Any) -> str:
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None:
        return "<unknown>"
    return f"{code.co_filename}:{code.co_firstlineno}"


@overload
def step(func: F, /) -> Step[F]: ...


@overload
def step(
    *,
    name: str | None = None,
    cache: bool | None = None,
    retries: Retry | int | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
    settings: dict[str, Any] | None = None,
    enable_logs: bool | None = None,
    version: str | None = None,
    model: Model | str | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
    step_operator: str | None = None,
    experiment_tracker: str | None = None,
) -> Callable[[F], Step[F]]: ...


def step(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool | None = None,
    retries: Retry | int | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
    settings: dict[str, Any] | None = None,
    enable_logs: bool | None = None,
    version: str | None = None,
    model: Model | str | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
    step_operator: str | None = None,
    experiment_tracker: str | None = None,
) -> Step[F] | Callable[[F], Step[F]]:
    """Make a function a pipeline step. Inputs and outputs come from its type hints; a return
    annotated ``Annotated[T, "name"]`` names the output (and its artifact), a ``tuple[...]``
    return declares several outputs.

    ``cache`` turns caching on or off for this step, ``retries`` (an int or ``Retry``) re-runs
    it when it raises, ``on_success``/``on_failure`` are hooks (callables or ``module:name``),
    ``settings`` are free-form step settings, ``enable_logs`` captures stdout/stderr/logging,
    and ``version`` pins a version string that is part of the cache key. ``model`` (a
    ``gristmill.Model``) links this step's outputs to a version of that model instead of the
    pipeline's; ``Annotated[T, ArtifactConfig(name=..., is_model_artifact=True)]`` says how
    an output is linked. ``resources`` (``Resources(cpu=2, memory="4GiB", gpu=1)``) says what
    the step needs where it runs; orchestrators that place steps use it. ``step_operator``
    names the stack's step operator that runs this step (another interpreter, a Spark
    session, a cluster job) while the orchestrator runs the rest.
    """

    def decorate(f: F) -> Step[F]:
        options = StepOptions(
            cache=cache,
            retries=retries,
            on_success=on_success,
            on_failure=on_failure,
            settings=dict(settings or {}),
            enable_logs=enable_logs,
            version=version,
            model=model,
            resources=resources,  # type: ignore[arg-type]  # a mapping is made Resources
            step_operator=step_operator,
            experiment_tracker=experiment_tracker,
        )
        return Step(f, name=name, options=options)

    if func is not None:
        return decorate(func)
    return decorate
