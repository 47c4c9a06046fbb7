"""The metadata store over a gristmill server's REST API (``/api/v1``): ``RestStore`` is every
capability of ``MetadataStore`` as HTTP calls, so a Client, the CLI and pipeline runs
configured with ``http(s)://`` record through the server exactly as they would into a
database. Artifacts never pass through it (their bytes go straight to the artifact store).
httpx is imported when a store is opened; this package must not import the server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote

from gristmill.errors import StoreError
from gristmill.store.base import STALE_AFTER_SECONDS, MetadataStore, safe_url
from gristmill.store.records import (
    ApiTokenRecord,
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
    NewArtifactVersion,
    PipelineRecord,
    RunDeletion,
    RunRecord,
    SecretRecord,
    SessionRecord,
    StackRecord,
    StageChange,
    StepRunRecord,
    StepStart,
    UserRecord,
)
from gristmill.store.rest import wire
from gristmill.store.rest.connection import normalize_url, token_for
from gristmill.store.rest.http import HttpSession

__all__ = ["RestStore", "open_rest_store"]

# The page size the store asks for when it wants a whole list (lists are paged on the server).
_PAGE = 1000


def _seg(value: str) -> str:
    """One path segment, escaped (names may hold anything but '/')."""
    return quote(value, safe="")


class RestStore(MetadataStore):
    """A gristmill server as the metadata store. ``token``: an API token (``gristmill token
    create``); reads need a viewer's, recording runs an editor's."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.url = normalize_url(url)
        self.http = HttpSession(self.url, token, timeout=timeout)

    def __repr__(self) -> str:
        return f"RestStore({safe_url(self.url)!r})"

    def close(self) -> None:
        self.http.close()

    def server_info(self) -> dict[str, Any]:
        """What the server says about itself: version, API version, its artifact store."""
        info: dict[str, Any] = self.http.get("/info")
        return info

    # -- RunWriter ------------------------------------------------------------------------------

    def create_run(
        self, run: RunRecord, step_runs: Sequence[StepRunRecord], *, spec_json: str
    ) -> None:
        self.http.post("/runs", {"run": run, "step_runs": list(step_runs), "spec_json": spec_json})

    def mark_running(
        self, step_run_id: str, *, started_at: float, logs_uri: str | None = None
    ) -> None:
        self.http.post(
            f"/step-runs/{_seg(step_run_id)}/running",
            {"started_at": started_at, "logs_uri": logs_uri},
            idempotent=True,
        )

    def find_cached(self, cache_key: str) -> CacheHit | None:
        data = self.http.get(f"/cache/{_seg(cache_key)}")
        return wire.cache_hit_from(data) if data is not None else None

    def cache_hit_of(self, step_run_id: str) -> CacheHit:
        return wire.cache_hit_from(self.http.get(f"/step-runs/{_seg(step_run_id)}/cache-hit"))

    def publish_step_run(
        self,
        step_run_id: str,
        *,
        start: StepStart,
        status: str,
        ended_at: float,
        outputs: Mapping[str, NewArtifactVersion | ArtifactVersionRecord],
        metadata: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
        attempts: int = 1,
        cached_from: str | None = None,
        logs_uri: str | None = None,
        metrics: Sequence[MetricPoint] = (),
    ) -> dict[str, ArtifactVersionRecord]:
        body = {
            "start": start,
            "status": status,
            "ended_at": ended_at,
            "outputs": [_output(name, out) for name, out in outputs.items()],
            "metadata": [[t, i, dict(v)] for t, i, v in metadata],
            "attempts": attempts,
            "cached_from": cached_from,
            "logs_uri": logs_uri,
            "metrics": list(metrics),
        }
        data = self.http.post(f"/step-runs/{_seg(step_run_id)}/publish", body)
        return wire.versions_by_name(data)

    def register_artifact_version(
        self, new: NewArtifactVersion, *, at: float
    ) -> ArtifactVersionRecord:
        data = self.http.post("/artifact-versions", {"new": new, "at": at})
        return wire.artifact_version_from(data)

    def fail_step_run(
        self,
        step_run_id: str,
        *,
        start: StepStart,
        error: str,
        ended_at: float,
        attempts: int,
        logs_uri: str | None = None,
        metadata: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
        status: str = "failed",
        metrics: Sequence[MetricPoint] = (),
    ) -> None:
        body = {
            "start": start,
            "error": error,
            "ended_at": ended_at,
            "attempts": attempts,
            "logs_uri": logs_uri,
            "metadata": [[t, i, dict(v)] for t, i, v in metadata],
            "status": status,
            "metrics": list(metrics),
        }
        self.http.post(f"/step-runs/{_seg(step_run_id)}/fail", body)

    def stop_step_runs(
        self, run_id: str, step_names: Sequence[str], *, reason: str, at: float
    ) -> None:
        self.http.post(
            f"/runs/{_seg(run_id)}/stop-steps",
            {"step_names": list(step_names), "reason": reason, "at": at},
            idempotent=True,
        )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        ended_at: float,
        error: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        body = {
            "status": status,
            "ended_at": ended_at,
            "error": error,
            "environment": dict(environment) if environment is not None else None,
        }
        self.http.post(f"/runs/{_seg(run_id)}/finish", body, idempotent=True)

    def heartbeat(self, run_id: str, at: float) -> None:
        self.http.post(f"/runs/{_seg(run_id)}/heartbeat", {"at": at}, idempotent=True)

    def request_stop(self, run_id: str, *, at: float) -> str:
        return str(self.http.post(f"/runs/{_seg(run_id)}/stop", {"at": at})["status"])

    def claim_step_run(
        self,
        step_run_id: str,
        *,
        at: float,
        host: str,
        pid: int,
        environment: Mapping[str, Any],
    ) -> None:
        body = {"at": at, "host": host, "pid": pid, "environment": dict(environment)}
        self.http.post(f"/step-runs/{_seg(step_run_id)}/claim", body, idempotent=True)

    def step_heartbeat(self, step_run_ids: Sequence[str], at: float) -> None:
        self.http.post(
            "/step-runs/heartbeat", {"step_run_ids": list(step_run_ids), "at": at}, idempotent=True
        )

    def add_metadata(
        self, entity_type: str, entity_id: str, values: Mapping[str, Any], at: float
    ) -> None:
        body = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "values": dict(values),
            "at": at,
        }
        self.http.post("/metadata", body)

    def reap_dead_runs(self, now: float, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
        data = self.http.post("/runs/reap", {"now": now, "stale_after": stale_after})
        return [str(i) for i in data]

    # -- RunDeleter -----------------------------------------------------------------------------

    def delete_runs(
        self, run_ids: Sequence[str], *, force: bool = False, dry_run: bool = False
    ) -> RunDeletion:
        body = {"run_ids": list(run_ids), "force": force, "dry_run": dry_run}
        return wire.deletion_from(self.http.post("/runs/delete", body))

    # -- RunReader ------------------------------------------------------------------------------

    def get_run(self, ref: str) -> RunRecord:
        return wire.run_from(self.http.get("/runs/lookup", {"ref": ref}))

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        experiment: str | None = None,
    ) -> list[RunRecord]:
        found: list[RunRecord] = []
        # The server caps a page; a caller asking for more gets every page it needs.
        while len(found) < limit:
            want = min(limit - len(found), _PAGE)
            params = {
                "pipeline": pipeline,
                "status": status,
                "experiment": experiment,
                "limit": want,
                "offset": offset + len(found),
                "total": "false",
            }
            items = self.http.get("/runs", params)["items"]
            found += [wire.run_from(r) for r in items]
            if len(items) < want:
                break
        return found

    def count_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        experiment: str | None = None,
    ) -> int:
        params = {"pipeline": pipeline, "status": status, "experiment": experiment, "limit": 0}
        return int(self.http.get("/runs", params)["total"])

    def get_step_runs(self, run_id: str) -> list[StepRunRecord]:
        return [wire.step_run_from(s) for s in self.http.get(f"/runs/{_seg(run_id)}/steps")]

    def get_step_run(self, step_run_id: str) -> StepRunRecord:
        return wire.step_run_from(self.http.get(f"/step-runs/{_seg(step_run_id)}"))

    def get_step_run_io(
        self, step_run_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, ArtifactVersionRecord], dict[str, ArtifactVersionRecord]]]:
        if not step_run_ids:
            return {}
        data = self.http.post(
            "/step-runs/io", {"step_run_ids": list(step_run_ids)}, idempotent=True
        )
        return {
            i: (wire.versions_by_name(io["inputs"]), wire.versions_by_name(io["outputs"]))
            for i, io in data.items()
        }

    def get_artifact_version(self, ref: str) -> ArtifactVersionRecord:
        return wire.artifact_version_from(self.http.get("/artifact-versions/lookup", {"ref": ref}))

    def list_artifact_versions(
        self,
        *,
        name: str | None = None,
        run_id: str | None = None,
        content_hash: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ArtifactVersionRecord]:
        found: list[ArtifactVersionRecord] = []
        while len(found) < limit:
            want = min(limit - len(found), _PAGE)
            params = {
                "name": name,
                "run_id": run_id,
                "content_hash": content_hash,
                "limit": want,
                "offset": offset + len(found),
            }
            items = self.http.get("/artifact-versions", params)["items"]
            found += [wire.artifact_version_from(v) for v in items]
            if len(items) < want:
                break
        return found

    def list_artifact_names(self) -> list[str]:
        return [str(n) for n in self._all("/artifacts")]

    def get_metadata(
        self, entity_type: str, entity_ids: Sequence[str]
    ) -> dict[str, list[MetadataRecord]]:
        if not entity_ids:
            return {}
        body = {"entity_type": entity_type, "entity_ids": list(entity_ids)}
        data = self.http.post("/metadata/query", body, idempotent=True)
        return {i: [wire.metadata_from(m) for m in entries] for i, entries in data.items()}

    def get_logs_uri(self, step_run_id: str) -> str | None:
        uri = self.http.get(f"/step-runs/{_seg(step_run_id)}/logs-uri")["uri"]
        return str(uri) if uri is not None else None

    def list_pipelines(self) -> list[PipelineRecord]:
        return [wire.pipeline_from(p) for p in self._all("/pipelines")]

    def get_pipeline(self, name: str) -> PipelineRecord:
        return wire.pipeline_from(self.http.get(f"/pipelines/{_seg(name)}"))

    def get_pipeline_spec(self, pipeline_version_id: str) -> str:
        data = self.http.get(f"/pipeline-versions/{_seg(pipeline_version_id)}")
        return str(data["spec_json"])

    # -- LineageReader --------------------------------------------------------------------------

    def lineage(self, artifact_version_id: str, *, direction: str = "upstream") -> LineageGraph:
        data = self.http.get(
            f"/artifact-versions/{_seg(artifact_version_id)}/lineage", {"direction": direction}
        )
        return wire.lineage_from(data)

    # -- StackCatalog ---------------------------------------------------------------------------

    def save_component(
        self, type: str, name: str, flavor: str, config: Mapping[str, Any]
    ) -> ComponentRecord:
        data = self.http.put(
            f"/components/{_seg(type)}/{_seg(name)}", {"flavor": flavor, "config": dict(config)}
        )
        return wire.component_from(data)

    def get_component(self, type: str, name: str) -> ComponentRecord:
        return wire.component_from(self.http.get(f"/components/{_seg(type)}/{_seg(name)}"))

    def list_components(self, type: str | None = None) -> list[ComponentRecord]:
        return [wire.component_from(c) for c in self._all("/components", {"type": type})]

    def delete_component(self, type: str, name: str) -> None:
        self.http.delete(f"/components/{_seg(type)}/{_seg(name)}")

    def save_stack(self, name: str, components: Mapping[str, str]) -> StackRecord:
        data = self.http.put(f"/stacks/{_seg(name)}", {"components": dict(components)})
        return wire.stack_from(data)

    def get_stack(self, name: str) -> StackRecord:
        return wire.stack_from(self.http.get(f"/stacks/{_seg(name)}"))

    def list_stacks(self) -> list[StackRecord]:
        return [wire.stack_from(s) for s in self._all("/stacks")]

    def delete_stack(self, name: str) -> None:
        self.http.delete(f"/stacks/{_seg(name)}")

    # -- SecretVault ----------------------------------------------------------------------------

    def save_secret(self, name: str, keys: Sequence[str], ciphertext: str) -> None:
        self.http.put(f"/secrets/{_seg(name)}", {"keys": list(keys), "ciphertext": ciphertext})

    def get_secret(self, name: str) -> SecretRecord:
        return wire.secret_from(self.http.get(f"/secrets/{_seg(name)}/ciphertext"))

    def list_secrets(self) -> list[SecretRecord]:
        """Names and keys; the ciphertext is left empty (``get_secret`` fetches it, with an
        editor's token)."""
        return [wire.secret_from(s) for s in self._all("/secrets")]

    def delete_secret(self, name: str) -> None:
        self.http.delete(f"/secrets/{_seg(name)}")

    # -- MetricWriter / MetricReader ------------------------------------------------------------

    def add_metric_points(self, points: Sequence[MetricPoint]) -> None:
        self.http.post("/metric-points", {"points": list(points)})

    def metric_history(
        self, run_id: str, name: str, *, step_run_id: str | None = None
    ) -> list[MetricPoint]:
        data = self.http.get(
            f"/runs/{_seg(run_id)}/metrics/{_seg(name)}", {"step_run_id": step_run_id}
        )
        return [wire.metric_point_from(p) for p in data]

    def metric_names(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        if not run_ids:
            return {}
        data = self.http.post("/metric-names", {"run_ids": list(run_ids)}, idempotent=True)
        return {i: [str(n) for n in names] for i, names in data.items()}

    def list_experiments(self) -> list[ExperimentRecord]:
        return [wire.experiment_from(e) for e in self._all("/experiments")]

    # -- ModelRegistry --------------------------------------------------------------------------

    def save_model(
        self,
        name: str,
        *,
        description: str | None = None,
        license: str | None = None,
        tags: Sequence[str] = (),
        details: Mapping[str, str] | None = None,
        at: float,
    ) -> ModelRecord:
        body = {
            "description": description,
            "license": license,
            "tags": list(tags),
            "details": dict(details) if details is not None else None,
            "at": at,
        }
        return wire.model_from(self.http.put(f"/models/{_seg(name)}", body))

    def get_model(self, name: str) -> ModelRecord:
        return wire.model_from(self.http.get(f"/models/{_seg(name)}"))

    def list_models(self) -> list[ModelRecord]:
        return [wire.model_from(m) for m in self._all("/models")]

    def create_model_version(
        self,
        model_name: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        run_id: str | None = None,
        at: float,
    ) -> ModelVersionRecord:
        body = {
            "name": name,
            "description": description,
            "tags": list(tags),
            "run_id": run_id,
            "at": at,
        }
        data = self.http.post(f"/models/{_seg(model_name)}/versions", body)
        return wire.model_version_from(data)

    def get_model_version(self, model_name: str, ref: str | int) -> ModelVersionRecord:
        data = self.http.get(f"/models/{_seg(model_name)}/versions/lookup", {"ref": str(ref)})
        return wire.model_version_from(data)

    def list_model_versions(
        self, model_name: str, *, stage: str | None = None
    ) -> list[ModelVersionRecord]:
        path = f"/models/{_seg(model_name)}/versions"
        return [wire.model_version_from(v) for v in self._all(path, {"stage": stage})]

    def set_model_version_stage(
        self,
        model_version_id: str,
        stage: str | None,
        *,
        force: bool = False,
        user: str,
        at: float,
        note: str | None = None,
    ) -> ModelVersionRecord:
        """The server records the user its token belongs to, not ``user``."""
        body = {"stage": stage, "force": force, "at": at, "note": note}
        data = self.http.post(f"/model-versions/{_seg(model_version_id)}/stage", body)
        return wire.model_version_from(data)

    def get_stage_history(self, model_version_id: str) -> list[StageChange]:
        data = self.http.get(f"/model-versions/{_seg(model_version_id)}/stages")
        return [wire.stage_change_from(c) for c in data]

    def link_model_artifacts(
        self, model_version_id: str, links: Mapping[str, str], *, at: float
    ) -> None:
        self.http.post(
            f"/model-versions/{_seg(model_version_id)}/artifacts",
            {"links": dict(links), "at": at},
            idempotent=True,
        )

    def list_model_artifacts(self, model_version_id: str) -> list[ModelArtifactLink]:
        data = self.http.get(f"/model-versions/{_seg(model_version_id)}/artifacts")
        return [wire.model_artifact_from(link) for link in data]

    def find_models_with_artifact(self, artifact_name: str) -> list[str]:
        data = self.http.get("/models", {"artifact": artifact_name, "limit": _PAGE})
        return [str(m["name"]) for m in data["items"]]

    def delete_model_version(self, model_version_id: str, *, force: bool = False) -> None:
        self.http.delete(
            f"/model-versions/{_seg(model_version_id)}", {"force": "true" if force else None}
        )

    def delete_model(self, name: str, *, force: bool = False) -> list[ModelVersionRecord]:
        data = self.http.delete(f"/models/{_seg(name)}", {"force": "true" if force else None})
        return [wire.model_version_from(v) for v in data]

    # -- UserDirectory: the server's own, never over its API ----------------------------------

    def _server_side(self, what: str) -> NoReturn:
        raise StoreError(
            f"{what}: users, API tokens and sessions live in the server's own database and "
            f"are not served to clients of {self.url}; manage them on the server "
            "(`gristmill user ...`, `gristmill token ...` with its store URL) or through the "
            "dashboard as an admin"
        )

    def create_user(self, name: str, *, role: str, password_hash: str, at: float) -> UserRecord:
        self._server_side("creating a user")

    def get_user(self, name: str) -> UserRecord:
        self._server_side("reading a user")

    def list_users(self) -> list[UserRecord]:
        self._server_side("listing users")

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        at: float,
    ) -> UserRecord:
        self._server_side("changing a user")

    def delete_user(self, name: str) -> None:
        self._server_side("deleting a user")

    def create_api_token(self, token: ApiTokenRecord) -> None:
        self._server_side("creating a token")

    def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        self._server_side("checking a token")

    def get_api_token(self, token_id: str) -> ApiTokenRecord:
        self._server_side("reading a token")

    def list_api_tokens(
        self, *, user: str | None = None, include_revoked: bool = False
    ) -> list[ApiTokenRecord]:
        self._server_side("listing tokens")

    def touch_api_token(self, token_id: str, at: float) -> None:
        self._server_side("recording a token's use")

    def revoke_api_token(self, token_id: str, at: float) -> ApiTokenRecord:
        self._server_side("revoking a token")

    def create_session(self, session: SessionRecord) -> None:
        self._server_side("starting a session")

    def find_session(self, session_hash: str) -> SessionRecord | None:
        self._server_side("checking a session")

    def touch_session(self, session_id: str, at: float) -> None:
        self._server_side("recording a session's use")

    def end_session(self, session_id: str) -> None:
        self._server_side("ending a session")

    def list_sessions(self, *, user: str | None = None) -> list[SessionRecord]:
        self._server_side("listing sessions")

    def end_sessions(self, *, user: str | None = None, expired_before: float | None = None) -> int:
        self._server_side("ending sessions")

    def record_login_failure(self, key: str, at: float, *, window: float) -> tuple[int, float]:
        self._server_side("recording a failed login")

    def login_failures(self, key: str) -> tuple[int, float | None]:
        self._server_side("reading failed logins")

    def clear_login_failures(self, key: str) -> None:
        self._server_side("clearing failed logins")

    # -- paging ---------------------------------------------------------------------------------

    def _all(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paged list."""
        found: list[Any] = []
        while True:
            page = self.http.get(path, {**(params or {}), "limit": _PAGE, "offset": len(found)})
            items = page["items"]
            found += items
            if len(items) < _PAGE:
                return found


def _output(name: str, out: NewArtifactVersion | ArtifactVersionRecord) -> dict[str, Any]:
    if isinstance(out, ArtifactVersionRecord):
        return {"name": name, "existing": out}
    return {"name": name, "new": out}


def open_rest_store(url: str, token: str | None = None) -> RestStore:
    """The store at a server URL; the token from the argument, GRISTMILL_API_TOKEN, or the
    saved connection (``gristmill connect``) to that server."""
    return RestStore(url, token if token is not None else token_for(url))
