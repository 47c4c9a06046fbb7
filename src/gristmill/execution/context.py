"""What a running step can see (``get_step_context()``) and record (``log_metadata``).

The context lives in a ContextVar, so steps running in parallel threads each see their own.
"""

from __future__ import annotations

import contextvars
import sys
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gristmill.errors import GristmillError, InvalidMetadataError
from gristmill.options import StepOptions
from gristmill.store import ArtifactVersionRecord, Entity


class InputArtifact:
    """An artifact version a step received as an input (read-only). For its metadata and
    lineage: ``Client().get_artifact_version(ctx.inputs["model"].id)``."""

    __slots__ = ("_record",)

    def __init__(self, record: ArtifactVersionRecord) -> None:
        self._record = record

    def __repr__(self) -> str:
        return f"<InputArtifact {self.name}:{self.version} {self.data_type}>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.artifact_name

    @property
    def version(self) -> int:
        return self._record.version

    @property
    def uri(self) -> str:
        return self._record.uri

    @property
    def content_hash(self) -> str:
        return self._record.content_hash

    @property
    def materializer(self) -> str:
        return self._record.materializer

    @property
    def data_type(self) -> str:
        return self._record.data_type

    @property
    def size(self) -> int:
        return self._record.size

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

    @cached_property
    def inputs(self) -> Mapping[str, InputArtifact]:
        """Input name → the artifact version it received (parameters are in ``parameters``)."""
        return types.MappingProxyType(
            {name: InputArtifact(record) for name, record in self.input_versions.items()}
        )


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
) -> None:
    """Attach metadata (metrics, parameters, notes: JSON values) to tracked entities.

    Inside a step with no target: to this step run and its run. ``artifact="name"``: to that
    output of this step, once stored. Outside a step, name the target: ``run=`` (id or name),
    ``step_run=`` (id) or ``artifact_version=`` (id, ``NAME`` or ``NAME:VERSION``).
    Inside a step the values are written with the step's outputs, in the same transaction.
    Secret values this process resolved are recorded as ``***``.
    """
    from gristmill.store.metadata_values import metadata_value

    values = dict(metadata)
    for key, value in values.items():
        metadata_value(key, value)  # fail at the call site, not at publish time
    secrets = sys.modules.get("gristmill.stacks.secrets")
    if secrets is not None:
        values = secrets.redact_value(values)
    context = _current.get()
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
