"""ZenML's spellings over gristmill's own API: a ZenML project whose ``from zenml import ...``,
``from zenml.client import Client`` and ``from zenml.logger import get_logger`` lines become
``from gristmill.compat.zenml import ...`` (or ``gristmill.compat.zenml.client`` /
``.logger`` / ``.enums``) runs on gristmill. Every name is a thin adapter that renames
arguments and results and calls gristmill's own function; nothing is implemented twice here.
What is not covered is listed in docs/zenml.md."""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar, overload

from gristmill import client as _client
from gristmill.compat.zenml._config import load_zenml_config, retry_options, zenml_run_config
from gristmill.errors import GristmillError, InvalidMetadataError, NotFoundError
from gristmill.execution import context as _context
from gristmill.models import definition as _definition
from gristmill.models import registry as _registry
from gristmill.models.definition import ArtifactConfig
from gristmill.options import Hook, Retry, RunConfig, StepConfig
from gristmill.pipelines import Pipeline as _Pipeline
from gristmill.spec import ExternalArtifact as _ExternalArtifact
from gristmill.steps import Step, active_tracer
from gristmill.steps import step as _step

__all__ = [
    "ArtifactConfig",
    "ArtifactVersion",
    "Client",
    "EntityNotFoundError",
    "ExternalArtifact",
    "Model",
    "ModelStages",
    "ModelVersion",
    "PipelineContext",
    "StepContext",
    "get_logger",
    "get_pipeline_context",
    "get_step_context",
    "load_zenml_config",
    "log_metadata",
    "pipeline",
    "step",
    "zenml_run_config",
]

F = TypeVar("F", bound=Callable[..., Any])


class EntityNotFoundError(NotFoundError, KeyError):
    """What ZenML raises as ``KeyError`` (a model, version or artifact that does not exist):
    caught by ``except KeyError`` as in ZenML code, and by ``except NotFoundError``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelStages(str, Enum):
    """ZenML's ``ModelStages``: members are the same strings as ``gristmill.ModelStages``
    (equal to them, and ``str()`` of a member is its value)."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    LATEST = "latest"

    def __str__(self) -> str:
        return str(self.value)


def _plain(value: Any) -> Any:
    """An enum member (ModelStages.PRODUCTION) as its plain value; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def get_logger(name: str) -> logging.Logger:
    """ZenML's ``get_logger``: the standard library logger (gristmill captures logging output
    of a running step with its logs)."""
    return logging.getLogger(name)


# -- registry objects ----------------------------------------------------------------------------


class ArtifactVersion(_client.ArtifactVersion):
    """gristmill's ``ArtifactVersion`` with ZenML's names: ``run_metadata`` (key → value),
    ``producer_pipeline_run_id``. Pass it to a step in a pipeline body as an input."""

    @classmethod
    def of(cls, version: _client.ArtifactVersion) -> ArtifactVersion:
        return version if isinstance(version, cls) else cls(version._client, version._record)

    @property
    def run_metadata(self) -> dict[str, Any]:
        """Each metadata key's latest value (ZenML >= 0.70 returns values, not wrappers)."""
        return self.metadata

    @property
    def producer_pipeline_run_id(self) -> str | None:
        return self.run_id


class ModelVersion(_registry.ModelVersion):
    """gristmill's ``ModelVersion`` with ZenML's names: ``run_metadata``, ``set_stage(stage,
    force=)`` taking ``ModelStages``, ``get_artifact``/``load_artifact`` returning ZenML-style
    artifact versions. ``name`` is the *model's* name, as on ZenML's ``Model`` (ZenML's
    ``ModelVersionResponse.name`` is the version's: use ``version`` here)."""

    @classmethod
    def of(cls, version: _registry.ModelVersion) -> ModelVersion:
        return version if isinstance(version, cls) else cls(version._client, version._record)

    @property
    def run_metadata(self) -> dict[str, Any]:
        return self.metadata

    def get_artifact(self, name: str, version: int | str | None = None) -> ArtifactVersion:
        try:
            found = super().get_artifact(name, _artifact_number(version))
        except NotFoundError as exc:
            raise EntityNotFoundError(str(exc)) from None
        return ArtifactVersion.of(found)

    def load_artifact(self, name: str, version: int | str | None = None) -> Any:
        return self.get_artifact(name, version).load()

    def set_stage(self, stage: Any, force: bool = False, *, note: str | None = None) -> None:
        super().set_stage(_plain(stage), force=force, note=note)


def _artifact_number(version: int | str | None) -> int | None:
    """ZenML names artifact versions with strings ("3"); gristmill numbers them."""
    if version is None or isinstance(version, int):
        return version
    if isinstance(version, str) and version.isdigit():
        return int(version)
    raise GristmillError(
        f"artifact version {version!r}: gristmill numbers artifact versions (1, 2, ...); "
        "custom version names are not supported"
    )


class Client:
    """ZenML's ``Client``: gristmill's ``Client`` with ZenML's lookup names and errors (a
    missing model, version or artifact raises ``KeyError``). Every other attribute is the
    gristmill Client's (``get_run``, ``list_runs``, ``lineage``, ...)."""

    def __init__(self) -> None:
        # Opened on first use, as ZenML's: a script may make its Client before the first run
        # creates the project.
        self._opened: _client.Client | None = None

    @property
    def _inner(self) -> _client.Client:
        if self._opened is None:
            self._opened = _client.Client()
        return self._opened

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def get_model(self, model_name_or_id: str) -> _registry.RegisteredModel:
        try:
            return self._inner.get_model(model_name_or_id)
        except NotFoundError as exc:
            raise EntityNotFoundError(str(exc)) from None

    def get_model_version(
        self,
        model_name_or_id: str,
        model_version_name_or_number_or_id: str | int | ModelStages | None = None,
    ) -> ModelVersion:
        """A stage, "latest" (the default), a number or a version name, as in ZenML."""
        try:
            found = self._inner.get_model_version(
                model_name_or_id, _plain(model_version_name_or_number_or_id)
            )
        except NotFoundError as exc:
            raise EntityNotFoundError(str(exc)) from None
        return ModelVersion.of(found)

    def get_artifact_version(
        self, name_id_or_prefix: str, version: int | str | None = None
    ) -> ArtifactVersion:
        """By id (or prefix), or by name: its latest version, or ``version`` ("3" or 3)."""
        try:
            found = self._inner.get_artifact_version(
                str(name_id_or_prefix), _artifact_number(version)
            )
        except NotFoundError as exc:
            raise EntityNotFoundError(str(exc)) from None
        return ArtifactVersion.of(found)

    def get_pipeline_run(self, name_id_or_prefix: str) -> _client.Run:
        try:
            return self._inner.get_run(str(name_id_or_prefix))
        except NotFoundError as exc:
            raise EntityNotFoundError(str(exc)) from None


# -- Model ---------------------------------------------------------------------------------------


class Model(_definition.Model):
    """ZenML's ``Model``: gristmill's ``Model`` (what ``@pipeline(model=...)`` and a
    configuration's ``model:`` take), also a handle on its version outside a pipeline body
    (``load_artifact``, ``run_metadata``, ``set_stage``, ``number``, ``stage``).

    In a pipeline body, ``get_artifact(name)`` is a reference resolved when the run starts,
    so ``version`` must name an existing version (a stage, a number, "latest" or a name)."""

    def __init__(
        self,
        name: str,
        version: str | int | ModelStages | None = None,
        license: str | None = None,
        description: str | None = None,
        audience: str | None = None,
        use_cases: str | None = None,
        limitations: str | None = None,
        trade_offs: str | None = None,
        ethics: str | None = None,
        tags: list[str] | None = None,
        save_models_to_registry: bool = True,  # ZenML's; versions are always kept here
        suppress_class_validation_warnings: bool = False,
    ) -> None:
        super().__init__(
            name=name,
            version=_plain(version),
            description=description,
            license=license,
            tags=list(tags or []),
            audience=audience,
            use_cases=use_cases,
            limitations=limitations,
            trade_offs=trade_offs,
            ethics=ethics,
        )

    @classmethod
    def of(cls, model: _definition.Model) -> Model:
        if isinstance(model, cls):
            return model
        details = model.details
        return cls(
            name=model.name,
            version=model.version,
            description=model.description,
            license=model.license,
            tags=model.tags,
            audience=details.get("audience"),
            use_cases=details.get("use_cases"),
            limitations=details.get("limitations"),
            trade_offs=details.get("trade_offs"),
            ethics=details.get("ethics"),
        )

    def get_artifact(self, name: str, version: int | str | None = None) -> Any:
        """In a pipeline body: a reference to artifact ``name`` of this model's version, to pass
        to a step. Elsewhere: that artifact version (None if the version has none)."""
        if active_tracer() is not None:
            if self.version is None:
                raise GristmillError(
                    f"Model({self.name!r}).get_artifact({name!r}) in a pipeline body: the model "
                    "has no version, and the version a run creates has no artifacts when the run "
                    "starts; give the model a version (production, latest, a number or a name)"
                )
            if version is not None:
                return _ExternalArtifact(f"{name}:{_artifact_number(version)}")
            return super().get_artifact(name)
        try:
            return self._version().get_artifact(name, version)
        except KeyError:
            return None

    def load_artifact(self, name: str, version: int | str | None = None) -> Any:
        return self._version().load_artifact(name, version)

    def _version(self) -> ModelVersion:
        return Client().get_model_version(self.name, self.version)

    @property
    def id(self) -> str:
        return self._version().id

    @property
    def number(self) -> int:
        return self._version().number

    @property
    def stage(self) -> str | None:
        return self._version().stage

    @property
    def run_metadata(self) -> dict[str, Any]:
        return self._version().run_metadata

    def log_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._version().log_metadata(dict(metadata))

    def set_stage(self, stage: Any, force: bool = False) -> None:
        self._version().set_stage(stage, force=force)


def ExternalArtifact(
    *,
    id: str | None = None,
    name: str | None = None,
    version: int | str | None = None,
    model: Model | None = None,
    value: Any = None,
) -> _ExternalArtifact:
    """ZenML's ``ExternalArtifact`` lookups, as gristmill's reference to an artifact version of
    an earlier run: ``id=``, ``name=`` (its latest version) with ``version=``, or ``name=``
    with ``model=`` (that artifact of the model's version). ``value=`` is not supported."""
    if value is not None:
        raise GristmillError(
            "ExternalArtifact(value=...) is not supported: pass the value as a step parameter, "
            "or produce it with a step"
        )
    if id is not None:
        return _ExternalArtifact(id=str(id))
    if name is None:
        raise GristmillError("ExternalArtifact needs id=... or name=...")
    if model is not None:
        return _ExternalArtifact(f"{name}@{model.version or 'latest'}", model=model.name)
    number = _artifact_number(version)
    return _ExternalArtifact(name if number is None else f"{name}:{number}")


# -- pipelines and steps -------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineContext:
    """What ``get_pipeline_context()`` gives a pipeline body: its name, model and options."""

    name: str
    model: Model | None
    enable_cache: bool | None
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


_pipeline_context: contextvars.ContextVar[PipelineContext | None] = contextvars.ContextVar(
    "gristmill_zenml_pipeline", default=None
)


def get_pipeline_context() -> PipelineContext:
    """The pipeline whose body is being traced (its ``model`` is the one chosen for the run:
    by ``@pipeline(model=...)``, ``with_options`` or the configuration file)."""
    found = _pipeline_context.get()
    if found is None:
        raise GristmillError(
            "get_pipeline_context() was called outside a pipeline body; call it inside a "
            "@pipeline function of gristmill.compat.zenml"
        )
    return found


class Pipeline(_Pipeline[F]):
    """gristmill's ``Pipeline`` that makes ``get_pipeline_context()`` available to its body
    and takes ZenML's ``with_options`` arguments (``config_path=`` a ZenML configuration)."""

    def trace(self, parameters: Mapping[str, Any] | None = None) -> Any:
        model = self.config.model
        context = PipelineContext(
            name=self.name,
            model=Model.of(model) if isinstance(model, _definition.Model) else None,
            enable_cache=self.config.enable_cache,
            settings=dict(self.config.settings),
        )
        token = _pipeline_context.set(context)
        try:
            return super().trace(parameters)
        finally:
            _pipeline_context.reset(token)

    def _with(self, name: str, config: RunConfig) -> Pipeline[F]:
        return Pipeline(self.func, name=name, config=config)

    def with_options(  # type: ignore[override]  # ZenML's arguments, not gristmill's
        self,
        *,
        config_path: str | os.PathLike[str] | None = None,
        run_name: str | None = None,
        enable_cache: bool | None = None,
        settings: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        model: _definition.Model | None = None,
        steps: Mapping[str, Mapping[str, Any]] | None = None,
        **unsupported: Any,
    ) -> Pipeline[F]:
        """A copy with these options: ``config_path`` is a ZenML run-configuration file;
        the other arguments win over it."""
        _refuse(unsupported, "pipeline.with_options")
        config = load_zenml_config(config_path) if config_path is not None else None
        step_configs: dict[str, StepConfig] | None = None
        if steps:
            translated = zenml_run_config({"steps": dict(steps)}, where="with_options(steps=...)")
            step_configs = dict(translated.steps)
        copy = super().with_options(
            config=config,
            run_name=run_name,
            enable_cache=enable_cache,
            settings=settings,
            tags=tags,
            model=model,
            steps=step_configs,
        )
        assert isinstance(copy, Pipeline)
        return copy


def _refuse(unsupported: Mapping[str, Any], where: str) -> None:
    if unsupported:
        names = ", ".join(sorted(unsupported))
        raise GristmillError(
            f"{where}: ZenML option(s) {names} not supported by gristmill.compat.zenml "
            "(docs/zenml.md lists what is covered)"
        )


@overload
def pipeline(func: F, /) -> Pipeline[F]: ...


@overload
def pipeline(
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    settings: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    model: _definition.Model | None = None,
    **unsupported: Any,
) -> Callable[[F], Pipeline[F]]: ...


def pipeline(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    settings: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    model: _definition.Model | None = None,
    **unsupported: Any,
) -> Pipeline[F] | Callable[[F], Pipeline[F]]:
    """ZenML's ``@pipeline``: gristmill's, with ``get_pipeline_context()`` in the body."""
    _refuse(unsupported, "@pipeline")

    config = RunConfig(
        enable_cache=enable_cache, settings=dict(settings or {}), tags=list(tags or []), model=model
    )

    def decorate(f: F) -> Pipeline[F]:
        return Pipeline(f, name=name or f.__name__, config=config)

    return decorate(func) if func is not None else decorate


@overload
def step(func: F, /) -> Step[F]: ...


@overload
def step(
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    enable_step_logs: bool | None = None,
    experiment_tracker: str | None = None,
    step_operator: str | None = None,
    settings: dict[str, Any] | None = None,
    on_failure: Hook | None = None,
    on_success: Hook | None = None,
    model: _definition.Model | None = None,
    retry: Any = None,
    **unsupported: Any,
) -> Callable[[F], Step[F]]: ...


def step(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    enable_step_logs: bool | None = None,
    experiment_tracker: str | None = None,
    step_operator: str | None = None,
    settings: dict[str, Any] | None = None,
    on_failure: Hook | None = None,
    on_success: Hook | None = None,
    model: _definition.Model | None = None,
    retry: Any = None,
    **unsupported: Any,
) -> Step[F] | Callable[[F], Step[F]]:
    """ZenML's ``@step``: gristmill's, with ZenML's option names (``enable_cache`` →
    ``cache``, ``enable_step_logs`` → ``enable_logs``, ``retry`` → ``retries``;
    ``experiment_tracker`` and ``step_operator`` are the same options)."""
    _refuse(unsupported, "@step")
    chosen = dict(settings or {})
    retries = Retry(**retry_options(retry, where="@step(retry=...)")) if retry else None
    decorate = _step(
        name=name,
        cache=enable_cache,
        enable_logs=enable_step_logs,
        settings=chosen,
        on_failure=on_failure,
        on_success=on_success,
        model=model,
        retries=retries,
        step_operator=step_operator,
        experiment_tracker=experiment_tracker,
    )
    return decorate(func) if func is not None else decorate


# -- inside a running step -----------------------------------------------------------------------


class StepContext:
    """ZenML's step context over gristmill's: ``model`` (also ``model_version``) is the run's
    model version, ``inputs`` the input artifact versions, ``pipeline_run`` and
    ``step_run`` the tracked run and step run. Other attributes are gristmill's
    (``step_name``, ``settings``, ``parameters``, ...)."""

    def __init__(self, context: _context.StepContext) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    @property
    def model(self) -> ModelVersion:
        return ModelVersion.of(self._context.model)

    @property
    def model_version(self) -> ModelVersion:  # ZenML < 0.50's name
        return self.model

    @property
    def inputs(self) -> dict[str, ArtifactVersion]:
        client = Client()
        return {
            name: client.get_artifact_version(found.id)
            for name, found in self._context.inputs.items()
        }

    @property
    def pipeline_run(self) -> _client.Run:
        return _client.Client().get_run(self._context.run_id)

    @property
    def step_run(self) -> _client.StepRun:
        return self.pipeline_run.step(self._context.step_name)


def get_step_context() -> StepContext:
    """The running step's context (an error outside a running step)."""
    return StepContext(_context.get_step_context())


def log_metadata(
    metadata: Mapping[str, Any],
    step_id: str | None = None,
    step_name: str | None = None,
    run_id_name_or_prefix: str | None = None,
    artifact_version_id: str | None = None,
    artifact_name: str | None = None,
    artifact_version: int | str | None = None,
    infer_artifact: bool = False,
    model_name: str | None = None,
    model_version: str | int | ModelStages | None = None,
    infer_model: bool = False,
    **unsupported: Any,
) -> None:
    """ZenML's ``log_metadata``: the target chosen by ZenML's arguments, written by gristmill's
    ``log_metadata``. With no target, inside a step: the step run (and its run).

    ``infer_model=True`` (in a step): the run's model version; ``model_name`` (+
    ``model_version``, default latest): that version. ``infer_artifact=True`` (in a step): the
    step's only output, or its output ``artifact_name``; ``artifact_version_id``, or
    ``artifact_name`` (+ ``artifact_version``, default latest): that artifact version.
    ``step_id``, ``step_name`` + ``run_id_name_or_prefix``, or ``run_id_name_or_prefix``: that
    step run or run."""
    _refuse(unsupported, "log_metadata")
    values = dict(metadata)
    if infer_model:
        _context.log_metadata(values, infer_model=True)
    elif model_name is not None:
        _context.log_metadata(values, model=model_name, model_version=_plain(model_version))
    elif artifact_version_id is not None:
        _context.log_metadata(values, artifact_version=str(artifact_version_id))
    elif infer_artifact or (artifact_name is not None and artifact_version is None):
        _log_on_output(values, artifact_name, infer_artifact)
    elif artifact_name is not None:
        number = _artifact_number(artifact_version)
        _context.log_metadata(values, artifact_version=f"{artifact_name}:{number}")
    elif step_id is not None:
        _context.log_metadata(values, step_run=str(step_id))
    elif step_name is not None:
        if run_id_name_or_prefix is None:
            raise InvalidMetadataError("log_metadata(step_name=...) needs run_id_name_or_prefix=")
        run = _client.Client().get_run(str(run_id_name_or_prefix))
        _context.log_metadata(values, step_run=run.step(step_name).id)
    elif run_id_name_or_prefix is not None:
        _context.log_metadata(values, run=str(run_id_name_or_prefix))
    else:
        _context.log_metadata(values)


def _log_on_output(values: dict[str, Any], name: str | None, inferred: bool) -> None:
    """On an output of the running step (``infer_artifact``), or, for ``artifact_name``
    alone, on that output when the running step has it, else the artifact's latest version."""
    running = _context.current_context()
    outputs = running.output_names if running is not None else ()
    if name is not None and (name in outputs or inferred):
        _context.log_metadata(values, artifact=name)
    elif name is not None:
        _context.log_metadata(values, artifact_version=name)
    elif running is None:
        raise InvalidMetadataError(
            "log_metadata(infer_artifact=True) outside a step: name the artifact with "
            "artifact_name= and artifact_version=, or artifact_version_id="
        )
    elif len(outputs) != 1:
        raise InvalidMetadataError(
            f"log_metadata(infer_artifact=True) in step '{running.step_name}': the step has "
            f"{len(outputs)} outputs ({', '.join(outputs) or 'none'}); choose one with "
            "artifact_name="
        )
    else:
        _context.log_metadata(values, artifact=outputs[0])
