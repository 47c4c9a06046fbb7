"""A run's models: the model version each step's outputs belong to (created or found when the
run starts), linking published outputs to it, and model artifacts taken as step inputs
(``ExternalArtifact("clf@production")``, resolved when the run starts)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gristmill.errors import NotFoundError, PipelineDefinitionError, StoreError
from gristmill.models.definition import Model, is_new_version_name
from gristmill.spec import ExternalArtifact
from gristmill.store import ArtifactVersionRecord, MetadataStore, ModelVersionRecord

if TYPE_CHECKING:
    from gristmill.execution.plan import RunPlan, StepPlan

logger = logging.getLogger("gristmill")


def model_of(plan: RunPlan, step_plan: StepPlan) -> Model | None:
    """The model a step's outputs belong to: its own (``@step(model=...)``, a configuration's
    ``steps.ID.model``), else the pipeline's (``@pipeline(model=...)``, ``model:``)."""
    own = step_plan.options.model
    if isinstance(own, Model):
        return own
    return plan.config.model if isinstance(plan.config.model, Model) else None


def resolve_models(
    plan: RunPlan, store: MetadataStore, *, at: float
) -> dict[str, ModelVersionRecord]:
    """Step id → the model version its outputs are linked to, for the steps that have a
    model. Each model (name and version) is resolved once per run: ``version=None`` creates
    the next numbered version, a version name creates that version the first time; a number,
    stage or ``latest`` must exist."""
    by_model: dict[tuple[str, str | None], ModelVersionRecord] = {}
    resolved: dict[str, ModelVersionRecord] = {}
    for step_id, step_plan in plan.steps.items():
        model = model_of(plan, step_plan)
        if model is None:
            continue
        key = (model.name, None if model.version is None else str(model.version))
        if key not in by_model:
            by_model[key] = _version_for(model, store, plan.run_id, at)
        resolved[step_id] = by_model[key]
    return resolved


def _version_for(model: Model, store: MetadataStore, run_id: str, at: float) -> ModelVersionRecord:
    store.save_model(
        model.name,
        description=model.description,
        license=model.license,
        tags=model.tags,
        details=model.details,
        at=at,
    )
    ref = None if model.version is None else str(model.version)
    if ref is None:
        return store.create_model_version(model.name, tags=model.tags, run_id=run_id, at=at)
    if is_new_version_name(ref):
        try:
            return store.get_model_version(model.name, ref)
        except NotFoundError:
            try:
                return store.create_model_version(
                    model.name, name=ref, tags=model.tags, run_id=run_id, at=at
                )
            except StoreError:  # another run created it first
                return store.get_model_version(model.name, ref)
    try:
        return store.get_model_version(model.name, ref)
    except NotFoundError as exc:
        raise NotFoundError(
            f"the run's Model(name='{model.name}', version='{ref}'): {exc}; use version=None "
            "for a new version, or a version name to create"
        ) from None


def link_outputs(
    store: MetadataStore,
    step_plan: StepPlan,
    version: ModelVersionRecord,
    outputs: Mapping[str, ArtifactVersionRecord],
) -> None:
    """Link a step's published outputs to its model version, as the kind its
    ``ArtifactConfig`` says (``data`` when it says nothing)."""
    links = {}
    for name, record in outputs.items():
        declared = step_plan.spec.outputs.get(name)
        links[record.id] = (declared.artifact_kind if declared else None) or "data"
    store.link_model_artifacts(version.id, links, at=time.time())


def find_model_artifact(
    store: MetadataStore, reference: ExternalArtifact, where: str
) -> ArtifactVersionRecord:
    """The artifact version ``clf@production`` names: the newest version of artifact ``clf``
    linked to the model version ``production`` of its model (``reference.model``, else the
    one model whose versions link ``clf``)."""
    name = str(reference.name)
    ref = str(reference.model_version)
    model = reference.model
    if model is None:
        models = store.find_models_with_artifact(name)
        if not models:
            raise NotFoundError(
                f"{where}: no model version links an artifact named '{name}' (from "
                f"{reference!r}); give the model: ExternalArtifact('{name}@{ref}', model=...)"
            )
        if len(models) > 1:
            raise PipelineDefinitionError(
                f"{where}: artifact '{name}' belongs to several models ({', '.join(models)}); "
                f"say which: ExternalArtifact('{name}@{ref}', model='{models[0]}')"
            )
        model = models[0]
    try:
        version = store.get_model_version(model, ref)
    except NotFoundError as exc:
        raise NotFoundError(f"{where} ({reference!r}): {exc}") from None
    matching = [
        link.artifact_version
        for link in store.list_model_artifacts(version.id)
        if link.artifact_version.artifact_name == name
    ]
    if not matching:
        label = version.name or str(version.number)
        stage = f" ({version.stage})" if version.stage and ref != version.stage else ""
        raise NotFoundError(
            f"{where}: {model} version {label}{stage} has no artifact '{name}' (from "
            f"{reference!r}); `gristmill models show {model} {label}` lists its artifacts"
        )
    return max(matching, key=lambda record: record.version)
