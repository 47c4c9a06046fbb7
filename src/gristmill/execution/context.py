"""What a running step can see (``get_step_context()``) and record (``log_metadata``).

The context lives in a ContextVar, so steps running in parallel threads each see their own.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gristmill.errors import GristmillError, InvalidMetadataError
from gristmill.store import Entity


@dataclass
class StepContext:
    """The run and step a step function is executing in.

    ``output_uris`` is filled as outputs are stored (artifacts are content-addressed, so an
    output's URI exists only once its bytes do): hooks see every output's URI.
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
    output_uris: dict[str, str] = field(default_factory=dict)
    pending_metadata: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


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
