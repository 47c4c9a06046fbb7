"""What can be chosen about a step and a run: one model per entity (``StepOptions``, and
``RunConfig`` for a pipeline's options and a run's configuration) used by the decorators,
``with_options``, run configuration files, YAML pipelines, the spec and the plan.

The models are plain frozen dataclasses so that defining a step imports nothing heavy;
pydantic validates them when they come from a file and writes their JSON Schemas. Constraints
live once, in each field's metadata, and are checked by ``__post_init__`` whichever way a model
is built.

One merge rule (``merge``) and one precedence order, lowest first::

    defaults < @step / @pipeline < with_options < configuration file < call arguments and -p

A value of ``None`` means "not chosen here: inherit". A chosen value replaces the one below it,
except dicts (``settings``, ``parameters``, ``steps``), which merge key by key, and ``tags``,
which accumulate. A field whose metadata says ``merge: replace`` is replaced whole.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gristmill.errors import ConfigError, GristmillError, PipelineDefinitionError
from gristmill.models.definition import Model

if TYPE_CHECKING:
    from pydantic import TypeAdapter

HOOK_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
# What a spec may hold: the source id of a local function too, which the plan maps back to the
# step's own callable.
_SOURCE_ID = r"^[A-Za-z_][\w.]*:[A-Za-z_<][\w.<>]*$"
# Settings that pick where or how a step runs but not what it computes; every other setting is
# part of the cache key.
INFRASTRUCTURE_SETTINGS = frozenset(
    {"resources", "step_operator", "experiment_tracker", "orchestrator", "docker", "image"}
)

Hook = Callable[..., Any] | str
_PYDANTIC = {"extra": "forbid", "use_attribute_docstrings": True}


def _minimum(value: float, description: str) -> dict[str, Any]:
    return {"minimum": value, "description": description}


@dataclass(frozen=True)
class Retry:
    """Retry a failing step ``count`` more times, waiting ``delay`` seconds, multiplied by
    ``backoff`` after each attempt."""

    __pydantic_config__ = _PYDANTIC

    count: int = field(default=0, metadata=_minimum(0, "How many more times to try."))
    delay: float = field(default=0.0, metadata=_minimum(0, "Seconds before the first retry."))
    backoff: float = field(
        default=1.0, metadata=_minimum(1, "Factor the delay grows by after each retry.")
    )

    def __post_init__(self) -> None:
        _check(self)
        # Floats always, so Retry(backoff=2) and a YAML 'backoff: 2' hash the same.
        object.__setattr__(self, "delay", float(self.delay))
        object.__setattr__(self, "backoff", float(self.backoff))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "delay": self.delay, "backoff": self.backoff}


_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
}


def memory_bytes(value: str | int) -> int:
    """``"4GiB"``, ``"512MB"``, ``"2Gi"`` or a byte count → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _MEMORY_UNITS:
        raise PipelineDefinitionError(
            f"resources memory {value!r} is not a size: write e.g. '4GiB', '512MB' or a byte count"
        )
    return int(float(match.group(1)) * _MEMORY_UNITS[unit])


@dataclass(frozen=True)
class Resources:
    """What one run of a step needs: CPU cores, memory (``"4GiB"``, ``"512MB"`` or bytes) and
    GPUs. Orchestrators that place steps (Dask, Ray) use them; where one cannot, it says so.
    Not part of the cache key: they choose where a step runs, not what it computes."""

    __pydantic_config__ = _PYDANTIC

    cpu: float | None = field(default=None, metadata=_minimum(0, "CPU cores."))
    memory: str | int | None = None
    """Memory: '4GiB', '512MB' or a byte count."""
    gpu: int | None = field(default=None, metadata=_minimum(0, "GPUs."))

    def __post_init__(self) -> None:
        for name in ("cpu", "gpu"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise PipelineDefinitionError(f"resources {name} must be a number, not {value!r}")
        if isinstance(self.gpu, float):
            if not self.gpu.is_integer():
                raise PipelineDefinitionError(
                    f"resources gpu must be a whole number, not {self.gpu}"
                )
            object.__setattr__(self, "gpu", int(self.gpu))
        _check(self)
        if self.cpu is not None:  # a float always, so cpu=2 and a YAML 'cpu: 2.0' hash the same
            object.__setattr__(self, "cpu", float(self.cpu))
        if self.memory is not None:
            memory_bytes(self.memory)  # a clear error now, not on a cluster later

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else memory_bytes(self.memory)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (("cpu", self.cpu), ("memory", self.memory), ("gpu", self.gpu))
            if v is not None
        }


_RESOURCE_ALIASES = {"cpu_count": "cpu", "gpu_count": "gpu"}


@dataclass(frozen=True)
class StepOptions:
    """Options of a step. ``None`` inherits from the level below (see the module docstring)."""

    __pydantic_config__ = _PYDANTIC

    cache: bool | None = None
    """Reuse an earlier identical run of this step (default: on)."""
    retries: Retry | int | None = field(default=None, metadata={"minimum": 0})
    """Retries: a count, or {count, delay, backoff}."""
    enable_logs: bool | None = None
    """Capture stdout, stderr and logging (default: on)."""
    on_success: Hook | None = field(default=None, metadata={"import_path": True})
    """Hook called after the step succeeds: 'module:function'."""
    on_failure: Hook | None = field(default=None, metadata={"import_path": True})
    """Hook called with the exception after the step fails: 'module:function'."""
    version: str | None = None
    """A version string that is part of the cache key."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Free settings (experiment_tracker, ...), merged key by key."""
    model: Model | str | None = field(default=None, metadata={"merge": "replace"})
    """The model this step's outputs belong to, instead of the pipeline's: {name, version}."""
    resources: Resources | None = field(default=None, metadata={"merge": "replace"})
    """What the step needs where it runs: {cpu, memory, gpu} (not part of the cache key)."""
    step_operator: str | None = None
    """The stack's step operator that runs this step (not part of the cache key)."""
    experiment_tracker: str | None = None
    """The stack's experiment tracker this step runs inside (not part of the cache key)."""

    def __post_init__(self) -> None:
        _check(self)
        _normalize_model(self)
        given: Any = self.resources
        if isinstance(self.settings, Mapping) and (
            {"resources", "step_operator", "experiment_tracker"} & set(self.settings)
        ):
            # Written as free settings (before these were options): one shape.
            settings = dict(self.settings)
            moved = settings.pop("resources", None)
            operator = settings.pop("step_operator", None)
            tracker = settings.pop("experiment_tracker", None)
            object.__setattr__(self, "settings", settings)
            if given is None:
                given = moved
            if self.step_operator is None:
                object.__setattr__(self, "step_operator", operator)
            if self.experiment_tracker is None:
                object.__setattr__(self, "experiment_tracker", tracker)
        for option, component in (
            ("step_operator", "step operator"),
            ("experiment_tracker", "experiment tracker"),
        ):
            chosen = getattr(self, option)
            if chosen is not None and (not isinstance(chosen, str) or not chosen.strip()):
                raise PipelineDefinitionError(
                    f"{option} must be the name of the stack's {component} (a string), not "
                    f"{chosen!r}"
                )
        if isinstance(given, Mapping):
            # ZenML's ResourceSettings spelling (cpu_count, gpu_count) is accepted as well.
            given = {_RESOURCE_ALIASES.get(k, k): v for k, v in given.items()}
            unknown = set(given) - {"cpu", "memory", "gpu"}
            if unknown:
                raise PipelineDefinitionError(
                    f"unknown resources option(s) {sorted(unknown)}: use cpu, memory, gpu"
                )
            given = Resources(**given)
        elif given is not None and not isinstance(given, Resources):
            raise PipelineDefinitionError(
                f"resources must be a mapping or gristmill.Resources(...), not {given!r}"
            )
        object.__setattr__(self, "resources", given)
        retries: Any = self.retries
        if isinstance(retries, bool) or not isinstance(retries, (Retry, int, Mapping, type(None))):
            raise PipelineDefinitionError(
                f"retries must be a count, a mapping or gristmill.Retry(...), not {retries!r}"
            )
        if isinstance(retries, Mapping):
            unknown = set(retries) - {"count", "delay", "backoff"}
            if unknown:
                raise PipelineDefinitionError(
                    f"unknown retries option(s) {sorted(unknown)}: use count, delay, backoff"
                )
            object.__setattr__(self, "retries", Retry(**retries))
        elif isinstance(retries, int):
            object.__setattr__(self, "retries", Retry(count=retries))

    def merged(self: OptionsT, other: StepOptions | None) -> OptionsT:
        return merge(self, other)

    def to_spec(self) -> dict[str, Any]:
        """The options chosen, as plain JSON for a StepSpec (hooks by their import path)."""
        from gristmill._source import source_id

        data: dict[str, Any] = {}
        for item in _fields(StepOptions):
            value = getattr(self, item.name)
            if value is None or value == {}:
                continue
            if isinstance(value, (Retry, Model, Resources)):
                value = value.to_dict()
            elif callable(value):
                value = source_id(value)
            data[item.name] = value
        return data

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> StepOptions:
        return cls(**{k: v for k, v in data.items() if k in _STEP_OPTION_NAMES})

    @staticmethod
    def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
        """Options written as one mapping where keys that are not options are free settings
        (a YAML step's ``settings:``), in this model's shape."""
        nested = {k: v for k, v in flat.items() if k in _STEP_OPTION_NAMES and k != "settings"}
        free = {k: v for k, v in flat.items() if k not in _STEP_OPTION_NAMES}
        given = flat.get("settings")
        nested["settings"] = {**free, **given} if isinstance(given, Mapping) else free
        return nested


@dataclass(frozen=True)
class StepConfig(StepOptions):
    """A step's options in a run configuration, and values for its parameters."""

    parameters: dict[str, Any] = field(default_factory=dict)
    """Parameter values for this step."""


_STEP_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(StepOptions))


@dataclass(frozen=True)
class RunConfig:
    """A pipeline's options and a run's configuration: what ``@pipeline``, ``with_options``,
    a configuration file (``-c run.yaml``) and the call (or ``-p``) choose."""

    __pydantic_config__ = {**_PYDANTIC, "title": "gristmill run configuration"}

    parameters: dict[str, Any] = field(default_factory=dict)
    """Pipeline parameter values."""
    enable_cache: bool | None = None
    """false: run every step, ignoring earlier results."""
    run_name: str | None = None
    """Run name or template: {pipeline}, {date}, {time}, {id}."""
    tags: list[str] = field(default_factory=list)
    """Tags of the run."""
    experiment: str | None = None
    """The experiment the run is grouped in for comparison (default: the pipeline's name)."""
    steps: dict[str, StepConfig] = field(default_factory=dict)
    """Step id -> options and parameters for that step."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Pipeline-level settings."""
    stack: str | None = None
    """The stack to run on (default: the active stack)."""
    orchestrator: dict[str, Any] | None = field(default=None, metadata={"merge": "replace"})
    """The orchestrator for these runs instead of the stack's: {flavor: ..., settings...}."""
    model: Model | str | None = field(default=None, metadata={"merge": "replace"})
    """The model whose version these runs create or use: {name: ..., version: ...}."""

    def __post_init__(self) -> None:
        _check(self)
        _normalize_model(self)
        _check_experiment(self.experiment)
        if self.orchestrator is not None and "flavor" not in self.orchestrator:
            raise ConfigError(
                'orchestrator needs a "flavor" key, e.g. {"flavor": "local_parallel", '
                '"max_workers": 8}'
            )

    def merged(self, other: RunConfig | None) -> RunConfig:
        return merge(self, other)

    def to_dict(self) -> dict[str, Any]:
        """What was chosen, as plain JSON (unchosen options left out)."""
        data = _chosen(self)
        data["parameters"] = dict(self.parameters)
        if self.steps:
            data["steps"] = {k: _chosen(v) for k, v in self.steps.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "run configuration") -> RunConfig:
        return validated(cls, dict(data), where=where)


OptionsT = TypeVar("OptionsT", bound="StepOptions | RunConfig")


def merge(base: OptionsT, override: StepOptions | RunConfig | None) -> OptionsT:
    """``base`` with what ``override`` chooses applied (the one merge rule)."""
    if override is None:
        return base
    changes: dict[str, Any] = {}
    names = _field_names(type(base))
    for item in _fields(type(override)):
        if item.name not in names:
            continue
        value: Any = getattr(override, item.name)
        current: Any = getattr(base, item.name)
        if value is None or value in ({}, []):
            continue
        if item.metadata.get("merge") == "replace" or current is None:
            changes[item.name] = value
        elif isinstance(value, dict) and item.name == "steps":
            steps = dict(current)
            for step_id, step_config in value.items():
                steps[step_id] = merge(steps.get(step_id, StepConfig()), step_config)
            changes[item.name] = steps
        elif isinstance(value, dict):
            changes[item.name] = {**current, **value}
        elif isinstance(value, list):
            changes[item.name] = [*current, *(v for v in value if v not in current)]
        else:
            changes[item.name] = value
    return dataclasses.replace(base, **changes) if changes else base


_FIELDS: dict[type, tuple[tuple[dataclasses.Field[Any], ...], frozenset[str]]] = {}


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """``dataclasses.fields`` of an options class, once: merging runs several per step."""
    return _fields_and_names(cls)[0]


def _field_names(cls: type) -> frozenset[str]:
    return _fields_and_names(cls)[1]


def _fields_and_names(cls: type) -> tuple[tuple[dataclasses.Field[Any], ...], frozenset[str]]:
    found = _FIELDS.get(cls)
    if found is None:
        fields = dataclasses.fields(cls)
        found = _FIELDS[cls] = (fields, frozenset(f.name for f in fields))
    return found


def _chosen(options: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for item in _fields(type(options)):
        value = getattr(options, item.name)
        if value is None or value in ({}, []):
            continue
        if isinstance(value, (Retry, Model, Resources)):
            value = value.to_dict()
        elif isinstance(value, str) or not callable(value):
            pass
        else:
            from gristmill._source import source_id

            value = source_id(value)
        data[item.name] = value
    return data


def _normalize_model(instance: Any) -> None:
    """A model given by name or as a mapping becomes a Model (one shape after construction)."""
    if instance.model is not None and not isinstance(instance.model, Model):
        object.__setattr__(instance, "model", Model.from_value(instance.model))


def _check_experiment(name: Any) -> None:
    if name is not None and (
        not isinstance(name, str) or not name.strip() or len(name) > 255 or not name.isprintable()
    ):
        raise ConfigError(
            f"experiment must be a name of 1 to 255 printable characters, not {name!r}"
        )


def _check(instance: Any) -> None:
    """The constraints written in the fields' metadata, whichever way the model was built."""
    for item in _fields(type(instance)):
        value = getattr(instance, item.name)
        if value is None:
            continue
        minimum = item.metadata.get("minimum")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if minimum is not None and number and not value >= minimum:
            label = f"retry {item.name}" if isinstance(instance, Retry) else item.name
            raise PipelineDefinitionError(f"{label} must be a number >= {minimum}, not {value!r}")
        if not item.metadata.get("import_path"):
            continue
        if isinstance(value, str) and not re.fullmatch(_SOURCE_ID, value):
            raise PipelineDefinitionError(
                f"{item.name} {value!r} is not 'module:function' (e.g. 'myproject.hooks:notify')"
            )
        if not isinstance(value, str) and not callable(value):
            raise PipelineDefinitionError(
                f"{item.name} must be a function or 'module:function', not {value!r}"
            )


# What a step does when nothing chose otherwise.
STEP_DEFAULTS = StepOptions(cache=True, retries=Retry(), enable_logs=True)


# -- validation and schemas (pydantic, imported only here) ---------------------------------------

_adapters: dict[type, TypeAdapter[Any]] = {}


def adapter(model: type) -> TypeAdapter[Any]:
    """The pydantic validator of a model (built once)."""
    adapter = _adapters.get(model)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _adapters[model] = TypeAdapter(model)
    return adapter


M = TypeVar("M")


def validated(model: type[M], data: Any, *, where: str) -> M:
    """``data`` (from a file or the command line) as a ``model``; a ValidationError becomes a
    ConfigError that names each problem's location."""
    from pydantic import ValidationError

    try:
        return adapter(model).validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe_problems(exc)}") from None


def describe_problems(exc: Any) -> str:
    """A pydantic ValidationError in plain words, one problem a line."""
    problems = exc.errors()
    # A union reports each member; where our own check explained the problem, keep that.
    explained = {p["loc"][:-1] for p in problems if isinstance(_cause(p), GristmillError)}
    lines = []
    for problem in problems:
        if problem["loc"][:-1] in explained and not isinstance(_cause(problem), GristmillError):
            continue
        location = ".".join(str(part) for part in problem["loc"] if not _is_branch(part))
        cause = _cause(problem)
        if isinstance(cause, GristmillError):
            message = str(cause)
        elif problem["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            message = "unknown option"
        elif problem["type"] == "missing":
            message = "is required"
        else:
            message = _PLAIN.get(problem["type"], problem["msg"])
        lines.append(f"{location}: {message}" if location else message)
    return "; ".join(dict.fromkeys(lines))


_PLAIN = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "dict_type": "must be a mapping (key: value)",
    "list_type": "must be a list",
    "dataclass_type": "must be a mapping (key: value)",
}


def _cause(problem: Mapping[str, Any]) -> Any:
    return problem.get("ctx", {}).get("error")


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and (part[:1].isupper() or part in ("int", "function-plain"))


def json_schema(model: type) -> dict[str, Any]:
    """The JSON Schema of a model, with the constraints from its fields' metadata."""
    from pydantic.json_schema import GenerateJsonSchema

    class _Schema(GenerateJsonSchema):
        def callable_schema(self, schema: Any) -> dict[str, Any]:
            return {"type": "string", "pattern": HOOK_PATTERN}

    schema = adapter(model).json_schema(schema_generator=_Schema)
    classes = {"Retry": Retry, "StepOptions": StepOptions, "StepConfig": StepConfig}
    for definition in (schema, *schema.get("$defs", {}).values()):
        cls = classes.get(definition.get("title", ""), model)
        for item in dataclasses.fields(cls):
            target = definition.get("properties", {}).get(item.name)
            if target is None:
                continue
            if "minimum" in item.metadata:
                target["minimum"] = item.metadata["minimum"]
            if item.metadata.get("import_path"):
                target["anyOf"] = [{"type": "string", "pattern": HOOK_PATTERN}, {"type": "null"}]
            if "description" in item.metadata:
                target.setdefault("description", item.metadata["description"])
    return schema
