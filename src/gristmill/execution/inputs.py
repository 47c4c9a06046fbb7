"""Artifact versions a step run takes without producing them: versions of earlier runs passed
as inputs (resolved once, when the run starts, with errors that name the step and argument),
DVC-tracked data (recorded then as a version of ``dvc:<path>``, a new one only when its md5 is
new) and the versions a cache hit links (checked first). Reads the stores; writes only the
versions that record DVC data."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from gristmill.artifacts import ArtifactStore, save_artifact
from gristmill.artifacts.materializers.base import candidates_for, data_type_name
from gristmill.errors import DataVersionError, NotFoundError, StoreError, did_you_mean
from gristmill.execution.plan import plain_class
from gristmill.spec import DVCPath, ExternalArtifact
from gristmill.store import (
    ArtifactVersionRecord,
    CacheHit,
    MetadataStore,
    NewArtifactVersion,
    RunReader,
    safe_url,
)

if TYPE_CHECKING:
    from gristmill.artifacts.dvc_data import DVCPointer

if TYPE_CHECKING:
    from gristmill.execution.plan import RunPlan, StepPlan


def resolve_external_inputs(
    plan: RunPlan,
    store: MetadataStore,
    artifact_store: ArtifactStore,
    data: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, dict[str, str]]:
    """Resolve every external input of the plan not resolved yet to one artifact version
    (``name`` is the latest now; a DVCPath the version of its md5 now), in place; return step →
    argument → version id, what the run records so that its other processes use the same
    versions. ``data`` receives step → argument → what DVC recorded for each DVC input read
    now (path, md5, rev, the git commit, repo), for the run's record."""
    resolved: dict[str, dict[str, str]] = {}
    located: dict[DVCPath, tuple[DVCPointer, ArtifactVersionRecord]] = {}
    for step_plan in plan.steps.values():
        for arg, reference in step_plan.spec.external_inputs.items():
            found = step_plan.external_inputs.get(arg)
            if found is None and isinstance(reference, DVCPath):
                if reference not in located:
                    located[reference] = _resolve_dvc(
                        store, artifact_store, step_plan, arg, reference
                    )
                pointer, found = located[reference]
                if data is not None:
                    data.setdefault(step_plan.id, {})[arg] = _data_record(pointer, found)
            elif found is None:
                assert isinstance(reference, ExternalArtifact)
                found = _resolve(store, artifact_store, step_plan, arg, reference)
            step_plan.external_inputs[arg] = found
            resolved.setdefault(step_plan.id, {})[arg] = found.id
    return resolved


def _resolve_dvc(
    store: MetadataStore,
    artifact_store: ArtifactStore,
    step_plan: StepPlan,
    arg: str,
    reference: DVCPath,
) -> tuple[DVCPointer, ArtifactVersionRecord]:
    """The version of ``dvc:<path>`` recording the md5 DVC has for the path now: the latest
    one with the same content, else a new one (registered, produced by no step run)."""
    from gristmill.artifacts.dvc_data import locate

    origin = step_plan.spec.origin
    where = f"step '{step_plan.id}'{f' ({origin})' if origin else ''}: input '{arg}'"
    try:
        pointer = locate(reference.path, rev=reference.rev, repo=reference.repo)
    except (NotFoundError, DataVersionError) as exc:
        raise type(exc)(f"{where} ({reference!r}): {exc}") from exc
    saved = save_artifact(artifact_store, pointer, where=where)
    same = store.list_artifact_versions(
        name=reference.artifact_name, content_hash=saved.content.content_hash, limit=1
    )
    if same and same[0].uri == saved.content.uri:
        return pointer, same[0]
    record = store.register_artifact_version(
        NewArtifactVersion(
            artifact_name=reference.artifact_name,
            uri=saved.content.uri,
            content_hash=saved.content.content_hash,
            materializer=saved.materializer,
            data_type=saved.data_type,
            size=saved.content.size,
            preview=saved.preview,
            metadata=saved.metadata,
        ),
        at=time.time(),
    )
    return pointer, record


def _data_record(pointer: DVCPointer, version: ArtifactVersionRecord) -> dict[str, Any]:
    record = {
        "path": pointer.path,
        "md5": pointer.md5,
        "rev": pointer.rev,
        "git_rev": pointer.git_rev,
        "repo": pointer.repo,
        "artifact_version": f"{version.artifact_name}:{version.version}",
    }
    return {k: v for k, v in record.items() if v is not None}


def attach_external_inputs(
    plan: RunPlan, store: RunReader, recorded: dict[str, dict[str, str]]
) -> None:
    """The versions a run recorded for its external inputs when it started, for a process
    that launches some of its steps."""
    for step_id, by_arg in recorded.items():
        step_plan = plan.steps.get(step_id)
        if step_plan is None:
            continue
        for arg, version_id in by_arg.items():
            step_plan.external_inputs[arg] = store.get_artifact_version(version_id)


def _resolve(
    store: RunReader,
    artifact_store: ArtifactStore,
    step_plan: StepPlan,
    arg: str,
    reference: ExternalArtifact,
) -> ArtifactVersionRecord:
    origin = step_plan.spec.origin
    where = f"step '{step_plan.id}'{f' ({origin})' if origin else ''}: input '{arg}'"
    record = _find(store, reference, where)
    problem = _stored_elsewhere(artifact_store, record)
    if problem is None and not artifact_store.exists(record.uri):
        problem = (
            f"its data is missing from the artifact store {artifact_store.root} (deleted?); "
            "pass another version"
        )
    if problem is not None:
        raise StoreError(
            f"{where}: artifact version '{record.artifact_name}:{record.version}' "
            f"(from {reference!r}) cannot be used: {problem}"
        )
    return record


def _find(store: RunReader, reference: ExternalArtifact, where: str) -> ArtifactVersionRecord:
    if reference.model_version is not None:  # "clf@production": a model version's artifact
        from gristmill.execution.models import find_model_artifact

        assert isinstance(store, MetadataStore)
        return find_model_artifact(store, reference, where)
    if reference.id is not None:
        try:
            record = store.get_artifact_version(reference.id)
        except NotFoundError:
            record = None
        if record is None or not record.id.startswith(reference.id):
            raise NotFoundError(
                f"{where}: no artifact version with id '{reference.id}' "
                "(`gristmill artifacts list` shows them)"
            )
        return record
    name = str(reference.name)
    latest = store.list_artifact_versions(name=name, limit=1)
    if not latest:
        raise NotFoundError(
            f"{where}: no artifact named '{name}'"
            f"{did_you_mean(name, store.list_artifact_names())}; `gristmill artifacts list` "
            "shows them"
        )
    if reference.version is None:
        return latest[0]
    try:
        record = store.get_artifact_version(f"{name}:{reference.version}")
    except NotFoundError:
        record = None
    if record is None or (record.artifact_name, record.version) != (name, reference.version):
        newest = latest[0].version
        raise NotFoundError(
            f"{where}: artifact '{name}' has no version {reference.version} (its versions go "
            f"up to {newest}; '{name}' alone is the latest)"
        )
    return record


def _stored_elsewhere(store: ArtifactStore, record: ArtifactVersionRecord) -> str | None:
    """Why ``record``'s URI is not where ``store`` keeps its content hash, if it is not."""
    expected = store.content_uri(record.content_hash)
    if record.uri == expected:
        return None
    return (
        f"its uri is {record.uri!r}, not the address of its content hash in the artifact "
        f"store {store.root} ({expected!r}): it was written to another artifact store (run "
        "on a stack that uses that store), or its row was changed outside gristmill"
    )


def check_cache_hit(store: ArtifactStore, plan: StepPlan, hit: CacheHit, url: str) -> None:
    """A StoreError unless every row a cache hit would link says what this step would publish:
    its URI is its content hash's address in this artifact store, and, when the output's type
    is declared, its type is that type (or a loaded subclass of it) and its materializer one
    that stores that type. A version is linked to every run that hits it, so a row changed
    behind gristmill's back (``data_type`` set to ``os.system``, ``uri`` to ``/tmp/x``) must
    not be handed on; it cannot be fixed here either (other runs link to it)."""
    for name, record in hit.outputs.items():
        differ = _stored_elsewhere(store, record)
        if differ is None:
            differ = _type_problem(record, plan.output_types.get(name, Any))
        if differ is not None:
            raise StoreError(
                f"the cached output '{name}' of step '{plan.id}', artifact version "
                f"'{record.artifact_name}:{record.version}' (id {record.id}) in the metadata "
                f"store at {safe_url(url)}, does not match what this step publishes: {differ}. "
                "Its row was changed outside gristmill; refusing to reuse it. Check who can "
                "write to the metadata store, then delete or restore that row (or run the "
                "step without the cache)"
            )


def _type_problem(record: ArtifactVersionRecord, annotation: Any) -> str | None:
    declared = plain_class(annotation)
    if declared is None or declared is object:
        return None  # decided at run time: any type, any materializer
    actual: Any = declared
    if record.data_type != data_type_name(declared):
        actual = _loaded_class(record.data_type)
        if actual is None:
            return None  # a class of a module not imported here: nothing to compare
        if not isinstance(actual, type) or not issubclass(actual, declared):
            return f"data_type is {record.data_type!r}, not the declared {data_type_name(declared)}"
    names = [m.name for m in candidates_for(actual)]
    if record.materializer not in names:
        return (
            f"materializer is {record.materializer!r}, which does not store a "
            f"{data_type_name(actual)} (these do: {', '.join(names) or 'none'})"
        )
    return None


def _unimported_submodule(name: str) -> bool:
    """Whether ``name`` is a submodule of an imported package that is not imported itself (its
    package holds no attribute for it yet). Looks the module up without importing it."""
    import importlib.util

    package = sys.modules.get(name.rpartition(".")[0])
    if package is None or not hasattr(package, "__path__"):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _loaded_class(dotted: str) -> Any:
    """What ``module.Qual.Name`` names in a module already imported (nothing is imported or
    called); None when no imported module holds it."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:split]))
        if module is None:
            continue
        found: Any = module
        for position, attribute in enumerate(parts[split:], start=split):
            inner = getattr(found, attribute, None)
            if inner is None:
                if found is module and _unimported_submodule(".".join(parts[: position + 1])):
                    return None  # e.g. pyspark.sql.classic, not imported yet: unknown, not wrong
                return False  # the module is loaded and has no such name: not its class
            found = inner
        return found
    return None
