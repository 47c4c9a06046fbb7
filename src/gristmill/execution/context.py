"""What a running step can see (``get_step_context()``) and record (``log_metadata``).

The context lives in a ContextVar, so steps running in parallel threads each see their own.
"""

from __future__ import annotations

import contextvars
import sys
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gristmill.errors import GristmillError, InvalidMetadataError
from gristmill.options import StepOptions
from gristmill.store import ArtifactVersionRecord, Entity, MetricPoint
from gristmill.store.records import ArtifactVersionView


class InputArtifact(ArtifactVersionView):
    """An artifact version a step received as an input (read-only). For its metadata and
    lineage: ``Client().get_artifact_version(ctx.inputs["model"].id)``."""

    __slots__ = ("_record",)

    def __init__(self, record: ArtifactVersionRecord) -> None:
        self._record = record

    def __repr__(self) -> str:
        return f"<InputArtifact {self.name}:{self.version} {self.data_type}>"

    @property
    def producer_step_run_id(self) -> str | None:
        """The step run that produced this version (None for one that no step produced)."""
        return self._record.producer_step_run_id


@dataclass
class StepContext:
    """The run and step a step function is executing in.

    ``settings`` are the step's resolved free settings and ``options`` all its resolved
    options (cache, retries, version, hooks, settings); ``inputs`` maps each artifact input to
    the version it received (``InputArtifact``). ``output_uris`` is filled as outputs are
    stored (artifacts are content-addressed, so an output's URI exists only once its bytes
    do): hooks see every output's URI.
    """

    run_id: str
    run_name: str
    pipeline_name: str
    step_name: str
    step_run_id: str
    attempt: int
    parameters: dict[str, Any]
    output_names: tuple[str, ...]
    artifact_store_root: str
    settings: dict[str, Any] = field(default_factory=dict)
    options: StepOptions = field(default_factory=StepOptions)
    # The store's records of the input versions; ``inputs`` wraps them when first asked.
    input_versions: Mapping[str, ArtifactVersionRecord] = field(default_factory=dict)
    output_uris: dict[str, str] = field(default_factory=dict)
    pending_metadata: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # The model version this step's outputs belong to, if the step or pipeline has a model.
    model_version_id: str | None = None
    model_factory: Callable[[], Any] | None = field(default=None, repr=False)

    # Metric points logged by ``log_metric``, written with the step's outcome (completed or
    # failed); ``metric_steps``: the next step number of each name in this step run.
    pending_metrics: list[MetricPoint] = field(default_factory=list)
    metric_steps: dict[str, int] = field(default_factory=dict)
    # The step's experiment tracker run (a ``gristmill.tracking.base.StepTracking``) when its
    # settings name one: what is logged through gristmill is mirrored to it.
    tracker: Any = field(default=None, repr=False)

    @cached_property
    def inputs(self) -> Mapping[str, InputArtifact]:
        """Input name → the artifact version it received (parameters are in ``parameters``)."""
        return types.MappingProxyType(
            {name: InputArtifact(record) for name, record in self.input_versions.items()}
        )

    @cached_property
    def model(self) -> Any:
        """The model version this run's outputs are linked to (a
        ``gristmill.models.registry.ModelVersion``: ``.name``, ``.version``, ``.number``,
        ``.get_artifact(...)``, ``.log_metadata(...)``); a GristmillError when neither the
        step nor the pipeline has a model."""
        if self.model_factory is None:
            raise GristmillError(
                f"step '{self.step_name}' runs without a model: give the pipeline or the step "
                "one, e.g. @pipeline(model=Model(name='...')) or @step(model=...)"
            )
        return self.model_factory()


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "gristmill_step", default=None
)


def get_step_context() -> StepContext:
    """The context of the step being executed; raises outside a step."""
    context = _current.get()
    if context is None:
        raise GristmillError(
            "get_step_context() was called outside a running step; call it inside a @step "
            "function (or one of its hooks) while a pipeline runs"
        )
    return context


def current_context() -> StepContext | None:
    return _current.get()


def set_context(context: StepContext | None) -> contextvars.Token[StepContext | None]:
    return _current.set(context)


def reset_context(token: contextvars.Token[StepContext | None]) -> None:
    _current.reset(token)


def log_metadata(
    metadata: Mapping[str, Any],
    *,
    artifact: str | None = None,
    run: str | None = None,
    step_run: str | None = None,
    artifact_version: str | None = None,
    model: Any = None,
    model_version: str | int | None = None,
    infer_model: bool = False,
) -> None:
    """Attach metadata (metrics, parameters, notes: JSON values) to tracked entities.

    Inside a step with no target: to this step run and its run. ``artifact="name"``: to that
    output of this step, once stored. Outside a step, name the target: ``run=`` (id or name),
    ``step_run=`` (id) or ``artifact_version=`` (id, ``NAME`` or ``NAME:VERSION``).
    Inside a step the values are written with the step's outputs, in the same transaction.
    Secret values this process resolved are recorded as ``***``.

    Model versions: inside a step of a run with a model, ``infer_model=True`` attaches the
    values to the run's model version (with the step's outputs). ``model=`` names one
    anywhere: a ``ModelVersion`` (``get_step_context().model``, the Client's), a ``Model``
    (its ``version``, else the latest), or a model name with ``model_version=`` (a number,
    stage, name or "latest"; the latest by default); written at once.
    """
    from gristmill.store.metadata_values import metadata_value

    values = dict(metadata)
    for key, value in values.items():
        metadata_value(key, value)  # fail at the call site, not at publish time
    secrets = sys.modules.get("gristmill.stacks.secrets")
    if secrets is not None:
        values = secrets.redact_value(values)
    context = _current.get()
    if infer_model and model is None:
        if context is None:
            raise InvalidMetadataError(
                "log_metadata(infer_model=True) outside a step: name the model with model=..."
            )
        if context.model_version_id is None:
            raise InvalidMetadataError(
                f"log_metadata(infer_model=True) in step '{context.step_name}': the run has no "
                "model; give the pipeline or step a Model, or name one with model=..."
            )
        context.pending_metadata.append((Entity.MODEL_VERSION, context.model_version_id, values))
        return
    if model is not None:
        _log_model_metadata(values, model, model_version)
        if run is None and step_run is None and artifact_version is None:
            return
    explicit = run is not None or step_run is not None or artifact_version is not None
    if context is not None and not explicit:
        if artifact is not None:
            if artifact not in context.output_names:
                raise InvalidMetadataError(
                    f"log_metadata(artifact={artifact!r}) in step '{context.step_name}': the step has "
                    f"no output '{artifact}' (outputs: {', '.join(context.output_names) or 'none'})"
                )
            context.pending_metadata.append((Entity.ARTIFACT_VERSION, artifact, values))
        else:
            context.pending_metadata.append((Entity.STEP_RUN, context.step_run_id, values))
            context.pending_metadata.append((Entity.RUN, context.run_id, values))
            if context.tracker is not None:
                context.tracker.log_metadata(values)
        return
    if not explicit:
        raise InvalidMetadataError(
            "log_metadata() outside a step needs a target: run=..., step_run=... or "
            "artifact_version=..."
        )
    from gristmill.project import find_project

    store = find_project().store()
    now = time.time()
    if run is not None:
        store.add_metadata(Entity.RUN, store.get_run(run).id, values, now)
    if step_run is not None:
        store.add_metadata(Entity.STEP_RUN, store.get_step_run(step_run).id, values, now)
    if artifact_version is not None:
        store.add_metadata(
            Entity.ARTIFACT_VERSION, store.get_artifact_version(artifact_version).id, values, now
        )


def _log_model_metadata(values: dict[str, Any], model: Any, version: str | int | None) -> None:
    """Write metadata on a model version named by a ModelVersion object, a Model or a name."""
    target_id = getattr(model, "id", None)
    if target_id is not None and hasattr(model, "number"):  # a ModelVersion of the registry
        model.log_metadata(values)
        return
    from gristmill.models.definition import Model, ModelStages
    from gristmill.project import find_project

    if isinstance(model, Model):
        name, ref = model.name, version if version is not None else model.version
    elif isinstance(model, str):
        name, ref = model, version
    else:
        raise InvalidMetadataError(
            f"log_metadata(model={model!r}): give a ModelVersion, a gristmill.Model or a model name"
        )
    store = find_project().store()
    found = store.get_model_version(name, ModelStages.LATEST if ref is None else ref)
    store.add_metadata(Entity.MODEL_VERSION, found.id, values, time.time())
