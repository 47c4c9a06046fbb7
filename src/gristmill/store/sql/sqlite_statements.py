"""The SQL of the prepared statements (prepared.py) for SQLite, compiled by SQLAlchemy
ahead of time so that a run need not import it. Generated: after changing a statement
run `make sqlite-statements` (a test fails until then)."""

from typing import Any

STATEMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "artifact_versions.insert": (
        "INSERT INTO artifact_versions (id, artifact_id, version, uri, content_hash, materializer, data_type, size, preview, producer_step_run_id, created_at) VALUES (:id, :artifact_id, :version, :uri, :content_hash, :materializer, :data_type, :size, :preview, :producer_step_run_id, :created_at)",
        {},
    ),
    "artifacts.claim_version.sqlite": (
        "INSERT INTO artifacts (id, name, created_at, last_version) VALUES (:id, :name, :created_at, :last_version) ON CONFLICT (id) DO UPDATE SET last_version = (artifacts.last_version + :last_version_1) RETURNING last_version",
        {"last_version": 1, "last_version_1": 1},
    ),
    "logs.insert": (
        "INSERT INTO logs (run_id, step_run_id, uri, created_at) VALUES ((SELECT step_runs.run_id \nFROM step_runs \nWHERE step_runs.id = :step_run_id), :step_run_id, :uri, :created_at)",
        {},
    ),
    "metadata_entries.insert": (
        'INSERT INTO metadata (entity_type, entity_id, "key", value, value_type, created_at) VALUES (:entity_type, :entity_id, :key, :value, :value_type, :created_at)',
        {},
    ),
    "metadata_entries.of": (
        'SELECT metadata."key", metadata.value \nFROM metadata \nWHERE metadata.entity_type = :entity_type AND metadata.entity_id = :entity_id ORDER BY metadata.id',
        {},
    ),
    "metric_points.highest_step": (
        "SELECT max(metric_points.step) AS max_1 \nFROM metric_points \nWHERE metric_points.run_id = :run_id AND metric_points.name = :name",
        {},
    ),
    "metric_points.insert": (
        "INSERT INTO metric_points (run_id, step_run_id, name, step, value, created_at) VALUES (:run_id, :step_run_id, :name, :step, :value, :created_at)",
        {},
    ),
    "pipeline_versions.insert_missing.sqlite": (
        "INSERT INTO pipeline_versions (id, pipeline_id, spec_hash, spec, created_at) VALUES (:id, :pipeline_id, :spec_hash, :spec, :created_at) ON CONFLICT DO NOTHING",
        {},
    ),
    "pipelines.insert_missing.sqlite": (
        "INSERT INTO pipelines (id, name, created_at) VALUES (:id, :name, :created_at) ON CONFLICT DO NOTHING",
        {},
    ),
    "runs.by_id": (
        "SELECT runs.id, runs.name, runs.pipeline_id, runs.pipeline_version_id, runs.status, runs.created_at, runs.started_at, runs.ended_at, runs.heartbeat_at, runs.host, runs.pid, runs.orchestrator, runs.stack, runs.config, runs.environment, runs.tags, runs.error, runs.experiment, pipelines.name AS pipeline_name, pipeline_versions.spec_hash \nFROM runs JOIN pipelines ON pipelines.id = runs.pipeline_id JOIN pipeline_versions ON pipeline_versions.id = runs.pipeline_version_id \nWHERE runs.id = :id",
        {},
    ),
    "runs.finish": (
        "UPDATE runs SET status=:status, ended_at=:ended_at, heartbeat_at=:ended_at, environment=coalesce(:environment, runs.environment), error=:error WHERE runs.id = :run_id",
        {},
    ),
    "runs.heartbeat": (
        "UPDATE runs SET heartbeat_at=:at WHERE runs.id = :run_id AND runs.status IN (:param_1, :param_2, :param_3)",
        {"param_1": "submitted", "param_2": "running", "param_3": "stopping"},
    ),
    "runs.insert": (
        "INSERT INTO runs (id, name, pipeline_id, pipeline_version_id, status, created_at, started_at, heartbeat_at, host, pid, orchestrator, stack, config, environment, tags, experiment) VALUES (:id, :name, :pipeline_id, :pipeline_version_id, :status, :created_at, :started_at, :heartbeat_at, :host, :pid, :orchestrator, :stack, :config, :environment, :tags, :experiment)",
        {},
    ),
    "runs.live": (
        "SELECT runs.id, runs.host, runs.pid, runs.heartbeat_at, runs.status \nFROM runs \nWHERE runs.status IN (:param_1, :param_2, :param_3, :param_4)",
        {"param_1": "pending", "param_2": "submitted", "param_3": "running", "param_4": "stopping"},
    ),
    "stacks.members": (
        "SELECT components.id, components.type, components.name, components.flavor, components.config, components.created_at, components.updated_at, stack_components.type AS role \nFROM components JOIN stack_components ON stack_components.component_id = components.id \nWHERE stack_components.stack_id = :stack_id",
        {},
    ),
    "stacks.named": (
        "SELECT stacks.id, stacks.name, stacks.created_at, stacks.updated_at \nFROM stacks \nWHERE stacks.name = :name",
        {},
    ),
    "step_run_inputs.insert": (
        "INSERT INTO step_run_inputs (step_run_id, name, artifact_version_id) VALUES (:step_run_id, :name, :artifact_version_id)",
        {},
    ),
    "step_run_outputs.insert": (
        "INSERT INTO step_run_outputs (step_run_id, name, artifact_version_id) VALUES (:step_run_id, :name, :artifact_version_id)",
        {},
    ),
    "step_run_outputs.of": (
        "SELECT artifact_versions.id, artifact_versions.artifact_id, artifact_versions.version, artifact_versions.uri, artifact_versions.content_hash, artifact_versions.materializer, artifact_versions.data_type, artifact_versions.size, artifact_versions.preview, artifact_versions.producer_step_run_id, artifact_versions.created_at, artifacts.name AS artifact_name, step_runs.run_id, step_run_outputs.name AS io_name \nFROM artifact_versions JOIN artifacts ON artifacts.id = artifact_versions.artifact_id LEFT OUTER JOIN step_runs ON step_runs.id = artifact_versions.producer_step_run_id JOIN step_run_outputs ON step_run_outputs.artifact_version_id = artifact_versions.id \nWHERE step_run_outputs.step_run_id = :step_run_id",
        {},
    ),
    "step_runs.find_cached": (
        "SELECT step_runs.id, step_runs.run_id, step_runs.name, step_runs.position, step_runs.source, step_runs.status, step_runs.cache_key, step_runs.code_hash, step_runs.parameters, step_runs.created_at, step_runs.started_at, step_runs.ended_at, step_runs.attempts, step_runs.cached_from, step_runs.error, step_runs.host, step_runs.pid, step_runs.heartbeat_at, step_runs.environment \nFROM step_runs \nWHERE step_runs.cache_key = :cache_key AND step_runs.status = :status_1 ORDER BY step_runs.ended_at DESC\n LIMIT :param_1 OFFSET :param_2",
        {"status_1": "completed", "param_1": 1, "param_2": 0},
    ),
    "step_runs.finish": (
        "UPDATE step_runs SET status=:status, cache_key=:cache_key, code_hash=:code_hash, parameters=:parameters, started_at=:started_at, ended_at=:ended_at, attempts=:attempts, cached_from=:cached_from, error=:error WHERE step_runs.id = :step_run_id",
        {},
    ),
    "step_runs.insert": (
        "INSERT INTO step_runs (id, run_id, name, position, source, status, parameters, created_at, attempts) VALUES (:id, :run_id, :name, :position, :source, :status, :parameters, :created_at, :attempts)",
        {},
    ),
    "step_runs.mark_running": (
        "UPDATE step_runs SET status=:status, started_at=:started_at WHERE step_runs.id = :step_run_id AND step_runs.status = :status_1",
        {"status": "running", "status_1": "pending"},
    ),
}
