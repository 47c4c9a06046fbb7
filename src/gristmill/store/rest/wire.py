"""The JSON form of the store's records as they cross HTTP, both ways: the server encodes with
``to_json``, the REST store decodes with the ``*_from`` functions. Plain ``json``: no pydantic
and no HTTP client here, so the server and the client share one definition of the format.

Non-finite floats (a metric that went NaN) are not JSON: responses carry them as
``{"$float": "nan" | "inf" | "-inf"}`` (only when there are some; ``restore_floats`` turns
them back), requests as Python's ``NaN``/``Infinity`` literals, which the server reads."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from gristmill.store.records import (
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    ExperimentRecord,
    LineageGraph,
    MetadataRecord,
    MetricPoint,
    ModelArtifactLink,
    ModelRecord,
    ModelVersionRecord,
    PipelineRecord,
    RunDeletion,
    RunRecord,
    SecretRecord,
    StackRecord,
    StageChange,
    StepRunRecord,
)

T = TypeVar("T")

FLOAT_TAG = "$float"
_TAG_BYTES = b'"$float"'
_FIELDS: dict[type, frozenset[str]] = {}


def plain(value: Any) -> Any:
    """Records (dataclasses), mappings, sequences and tuples as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> bytes:
    """Strict JSON bytes of ``value`` (records included), non-finite floats tagged."""
    data = plain(value)
    try:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except ValueError:  # a NaN or an infinity somewhere: tag them (rare, so only then)
        text = json.dumps(_tag_floats(data), separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _tag_floats(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {k: _tag_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag_floats(v) for v in value]
    return value


def from_json(body: bytes) -> Any:
    """Data from a response body, tagged non-finite floats restored."""
    data = json.loads(body)
    if _TAG_BYTES in body:
        data = restore_floats(data)
    return data


def restore_floats(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and FLOAT_TAG in value:
            return float(value[FLOAT_TAG])
        return {k: restore_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_floats(v) for v in value]
    return value


# -- decoding -------------------------------------------------------------------------------------


def record(cls: type[T], data: Mapping[str, Any]) -> T:
    """A flat record from its JSON object; fields this gristmill does not know (a newer
    server's) are ignored."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def run_from(data: Mapping[str, Any]) -> RunRecord:
    return record(RunRecord, data)


def step_run_from(data: Mapping[str, Any]) -> StepRunRecord:
    return record(StepRunRecord, data)


def artifact_version_from(data: Mapping[str, Any]) -> ArtifactVersionRecord:
    return record(ArtifactVersionRecord, data)


def versions_by_name(data: Mapping[str, Any]) -> dict[str, ArtifactVersionRecord]:
    return {name: artifact_version_from(v) for name, v in data.items()}


def cache_hit_from(data: Mapping[str, Any]) -> CacheHit:
    return CacheHit(
        step_run=step_run_from(data["step_run"]),
        outputs=versions_by_name(data["outputs"]),
        metadata=dict(data["metadata"]),
    )


def metadata_from(data: Mapping[str, Any]) -> MetadataRecord:
    return record(MetadataRecord, data)


def lineage_from(data: Mapping[str, Any]) -> LineageGraph:
    return LineageGraph(
        root=data["root"],
        artifact_versions=versions_by_name(data["artifact_versions"]),
        step_runs={k: step_run_from(v) for k, v in data["step_runs"].items()},
        edges=[(a, s, b) for a, s, b in data["edges"]],
    )


def component_from(data: Mapping[str, Any]) -> ComponentRecord:
    return record(ComponentRecord, data)


def stack_from(data: Mapping[str, Any]) -> StackRecord:
    return StackRecord(
        id=data["id"],
        name=data["name"],
        components={k: component_from(v) for k, v in data["components"].items()},
        created_at=data["created_at"],
        updated_at=data["updated_at"],
    )


def secret_from(data: Mapping[str, Any]) -> SecretRecord:
    return SecretRecord(
        name=data["name"],
        keys=list(data["keys"]),
        ciphertext=data.get("ciphertext") or "",
        created_at=data["created_at"],
        updated_at=data["updated_at"],
    )


def deletion_from(data: Mapping[str, Any]) -> RunDeletion:
    return RunDeletion(
        runs=[run_from(r) for r in data["runs"]],
        step_runs=int(data["step_runs"]),
        artifact_versions=[artifact_version_from(v) for v in data["artifact_versions"]],
        kept_artifact_versions=[artifact_version_from(v) for v in data["kept_artifact_versions"]],
    )


def metric_point_from(data: Mapping[str, Any]) -> MetricPoint:
    point = record(MetricPoint, data)
    point.value = float(point.value)
    return point


def pipeline_from(data: Mapping[str, Any]) -> PipelineRecord:
    return record(PipelineRecord, data)


def experiment_from(data: Mapping[str, Any]) -> ExperimentRecord:
    return record(ExperimentRecord, data)


def model_from(data: Mapping[str, Any]) -> ModelRecord:
    return record(ModelRecord, data)


def model_version_from(data: Mapping[str, Any]) -> ModelVersionRecord:
    return record(ModelVersionRecord, data)


def stage_change_from(data: Mapping[str, Any]) -> StageChange:
    return record(StageChange, data)


def model_artifact_from(data: Mapping[str, Any]) -> ModelArtifactLink:
    return ModelArtifactLink(
        artifact_version=artifact_version_from(data["artifact_version"]),
        kind=data["kind"],
        created_at=data["created_at"],
    )
