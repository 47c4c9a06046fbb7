"""The metadata store split by capability: the interfaces, ids and metadata values that live
outside SQL, ``create_run`` writing new pipeline versions, the prepared-statement fast path
closing its cursors, and database errors reaching callers only as gristmill errors."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from gristmill.errors import (
    ConfigError,
    GristmillError,
    InvalidMetadataError,
    NotFoundError,
    StoreError,
)
from gristmill.store import (
    LineageReader,
    MetadataStore,
    MetricReader,
    MetricWriter,
    ModelRegistry,
    NewArtifactVersion,
    RunDeleter,
    RunReader,
    RunRecord,
    RunWriter,
    SecretRecord,
    SecretVault,
    StackCatalog,
    Status,
    StepRunRecord,
    StepStart,
    UserDirectory,
    open_store,
    safe_url,
)
from gristmill.store import schema as s
from gristmill.store.ids import (
    artifact_id,
    new_artifact_version_id,
    pipeline_id,
    pipeline_version_id,
)
from gristmill.store.metadata_values import metadata_value
from gristmill.store.sql import SQLStore
from gristmill.store.sql.prepared import (
    DriverConnection,
    Prepared,
    current_sqlite_statements,
    execute,
    insert_of,
)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = SQLStore(f"sqlite:///{tmp_path / 'capabilities.db'}")
    yield opened
    opened.close()


def _run(name: str = "r1", spec_hash: str = "h1", pipeline: str = "p") -> RunRecord:
    now = time.time()
    return RunRecord(
        id=f"{name:0>32}",
        name=name,
        pipeline_name=pipeline,
        pipeline_version_id=pipeline_version_id(pipeline, spec_hash),
        status=Status.RUNNING,
        created_at=now,
        spec_hash=spec_hash,
    )


def _step(run: RunRecord, name: str = "a") -> StepRunRecord:
    return StepRunRecord(
        id=f"{run.name}{name}".rjust(32, "s"),
        run_id=run.id,
        name=name,
        source="m:a",
        status=Status.PENDING,
        created_at=run.created_at,
    )


# -- interfaces -----------------------------------------------------------------------------------


def test_the_metadata_store_is_the_sum_of_small_capabilities(store: SQLStore) -> None:
    capabilities = (
        RunWriter,
        RunReader,
        RunDeleter,
        LineageReader,
        StackCatalog,
        SecretVault,
        MetricWriter,
        MetricReader,
        ModelRegistry,
        UserDirectory,
    )
    assert all(issubclass(MetadataStore, c) for c in capabilities)
    assert all(isinstance(store, c) for c in capabilities)
    # pinned: a REST client implements exactly these; no method belongs to two capabilities
    assert {c.__name__: sorted(c.__abstractmethods__) for c in capabilities} == {
        "RunWriter": [
            "add_metadata",
            "cache_hit_of",
            "claim_step_run",
            "create_run",
            "fail_step_run",
            "find_cached",
            "finish_run",
            "heartbeat",
            "mark_running",
            "publish_step_run",
            "reap_dead_runs",
            "register_artifact_version",
            "request_stop",
            "step_heartbeat",
            "stop_step_runs",
        ],
        "RunReader": [
            "count_runs",
            "get_artifact_version",
            "get_logs_uri",
            "get_metadata",
            "get_pipeline",
            "get_pipeline_spec",
            "get_run",
            "get_step_run",
            "get_step_run_io",
            "get_step_runs",
            "list_artifact_names",
            "list_artifact_versions",
            "list_pipelines",
            "list_runs",
        ],
        "RunDeleter": ["delete_runs"],
        "LineageReader": ["lineage"],
        "StackCatalog": [
            "delete_component",
            "delete_stack",
            "get_component",
            "get_stack",
            "list_components",
            "list_stacks",
            "save_component",
            "save_stack",
        ],
        "SecretVault": ["delete_secret", "get_secret", "list_secrets", "save_secret"],
        "MetricWriter": ["add_metric_points"],
        "MetricReader": ["list_experiments", "metric_history", "metric_names"],
        "ModelRegistry": [
            "create_model_version",
            "delete_model",
            "delete_model_version",
            "find_models_with_artifact",
            "get_model",
            "get_model_version",
            "get_stage_history",
            "link_model_artifacts",
            "list_model_artifacts",
            "list_model_versions",
            "list_models",
            "save_model",
            "set_model_version_stage",
        ],
        "UserDirectory": [
            "clear_login_failures",
            "create_api_token",
            "create_session",
            "create_user",
            "delete_user",
            "end_session",
            "end_sessions",
            "find_api_token",
            "find_session",
            "get_api_token",
            "get_user",
            "list_api_tokens",
            "list_sessions",
            "list_users",
            "login_failures",
            "record_login_failure",
            "revoke_api_token",
            "touch_api_token",
            "touch_session",
            "update_user",
        ],
    }
    # + register_artifact_version, ModelRegistry, MetricWriter and MetricReader, and the
    # workers' claim_step_run and step_heartbeat, the server's UserDirectory, request_stop
    assert len(MetadataStore.__abstractmethods__) == 39 + 1 + 13 + 4 + 2 + 20 + 1


def test_a_capability_can_be_implemented_alone() -> None:
    class MemoryVault(SecretVault):
        def __init__(self) -> None:
            self.secrets: dict[str, SecretRecord] = {}

        def save_secret(self, name: str, keys: Any, ciphertext: str) -> None:
            self.secrets[name] = SecretRecord(name, sorted(keys), ciphertext, 0.0, 0.0)

        def get_secret(self, name: str) -> SecretRecord:
            return self.secrets[name]

        def list_secrets(self) -> list[SecretRecord]:
            return list(self.secrets.values())

        def delete_secret(self, name: str) -> None:
            del self.secrets[name]

    vault = MemoryVault()
    vault.save_secret("creds", ["b", "a"], "xyz")
    assert vault.get_secret("creds").keys == ["a", "b"]


def test_ids_and_metadata_values_need_no_sqlalchemy() -> None:
    code = (
        "import sys, gristmill.execution, gristmill.store, gristmill.store.ids, "
        "gristmill.store.metadata_values; print('sqlalchemy' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "False"


def test_derived_ids_do_not_drift() -> None:
    """Existing stores hold these ids: changing a derivation orphans their rows."""
    assert artifact_id("total") == "a694e1240217b151d735a9e95abcf06f"
    # an artifact version is one step run's output: its id is fresh, not derived from bytes
    assert new_artifact_version_id() != new_artifact_version_id()
    assert len(new_artifact_version_id()) == 32
    assert pipeline_id("summing") == "ed8c2dee8a0ba799aa91478342f9cd8a"
    assert pipeline_version_id("summing", "abc") == "b13497e3313ed45b3d815e4cd8942f77"


def test_metadata_values_are_checked() -> None:
    assert metadata_value("acc", 0.5) == ("0.5", "float")
    assert metadata_value("ok", True) == ("true", "bool")
    assert metadata_value("tags", {"b": 1, "a": [1, 2]}) == ('{"a":[1,2],"b":1}', "json")
    with pytest.raises(InvalidMetadataError, match="non-empty strings"):
        metadata_value("", 1)
    with pytest.raises(InvalidMetadataError, match="is not JSON"):
        metadata_value("model", object())


# -- create_run and pipeline versions ----------------------------------------------------------


def test_create_run_writes_a_new_pipeline_version_with_the_run(store: SQLStore) -> None:
    first = _run("r1")
    store.create_run(first, [_step(first)], spec_json='{"v": 1}')
    second = _run("r2")
    store.create_run(second, [_step(second)], spec_json='{"v": 1}')
    changed = _run("r3", spec_hash="h2")
    store.create_run(changed, [], spec_json='{"v": 2}')
    [info] = store.list_pipelines()
    assert (info.name, info.version_count, info.run_count) == ("p", 2, 3)
    assert store.get_run("r3").spec_hash == "h2"
    assert store.get_pipeline_spec(changed.pipeline_version_id) == '{"v": 2}'
    assert [sr.name for sr in store.get_step_runs(first.id)] == ["a"]


def test_another_process_writing_the_same_version_first_is_fine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    one, two = SQLStore(url), SQLStore(url)
    try:
        one.create_run(_run("r1"), [], spec_json="{}")
        two.create_run(_run("r2"), [], spec_json="{}")  # its cache has not seen the version
        assert two.get_pipeline("p").version_count == 1
    finally:
        one.close()
        two.close()


def test_a_run_must_carry_its_spec_hash(store: SQLStore) -> None:
    run = _run("r1")
    run.spec_hash = None
    with pytest.raises(StoreError, match="spec_hash"):
        store.create_run(run, [], spec_json="{}")
    run = _run("r1")
    run.pipeline_version_id = "0" * 32
    with pytest.raises(StoreError, match="pipeline_version_id"):
        store.create_run(run, [], spec_json="{}")


def test_a_taken_run_name_is_explained_and_nothing_is_written(store: SQLStore) -> None:
    store.create_run(_run("r1"), [], spec_json="{}")
    again = _run("r1", spec_hash="h9")
    again.id = "f" * 32
    with pytest.raises(StoreError, match="a run named 'r1' already exists"):
        store.create_run(again, [], spec_json="{}")
    # the new version rolled back with the run
    assert store.get_pipeline("p").version_count == 1


# -- errors at the boundary --------------------------------------------------------------------


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql+psycopg://ml:hunter2@127.0.0.1:1/gm"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "hunter2" not in message
    assert (
        "cannot reach the metadata store at postgresql+psycopg://ml:***@127.0.0.1:1/gm" in message
    )
    assert "GRISTMILL_STORE_URL" in message
    assert safe_url(url) == "postgresql+psycopg://ml:***@127.0.0.1:1/gm"


def test_an_unopenable_sqlite_file_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        StoreError, match=r"cannot reach the metadata store at sqlite:///.*check the path"
    ):
        SQLStore(f"sqlite:///{tmp_path}")  # a folder, not a database file


def test_lookups_that_miss_raise_not_found(store: SQLStore) -> None:
    for lookup in (
        lambda: store.get_run("nope"),
        lambda: store.get_step_run("nope"),
        lambda: store.cache_hit_of("nope"),
        lambda: store.get_artifact_version("nope"),
        lambda: store.get_pipeline("nope"),
        lambda: store.get_pipeline_spec("nope"),
        lambda: store.lineage("nope"),
        lambda: store.get_component("orchestrator", "nope"),
        lambda: store.get_stack("nope"),
        lambda: store.get_secret("nope"),
        lambda: store.delete_secret("nope"),
    ):
        with pytest.raises(NotFoundError):
            lookup()
    assert store.find_cached("nope") is None
    assert store.get_logs_uri("nope") is None


def test_bad_arguments_raise_gristmill_errors(store: SQLStore) -> None:
    with pytest.raises(ConfigError, match="upstream"):
        store.lineage("nope", direction="sideways")
    run = _run("r1")
    step = _step(run)
    store.create_run(run, [step], spec_json="{}")
    start = StepStart(time.time(), {}, "code", None, {})
    with pytest.raises(InvalidMetadataError, match="output 'missing'"):
        store.publish_step_run(
            step.id,
            start=start,
            status=Status.COMPLETED,
            ended_at=time.time(),
            outputs={},
            metadata=[("artifact_version", "missing", {"x": 1})],
        )
    assert store.get_step_run(step.id).status == Status.PENDING


def test_database_failures_become_store_errors(store: SQLStore) -> None:
    run = _run("r1")
    store.create_run(run, [_step(run)], spec_json="{}")
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE logs"))
        conn.execute(text("DROP TABLE metadata"))
    with pytest.raises(StoreError, match="failed reading where step run 'x' logged") as caught:
        store.get_logs_uri("x")
    assert isinstance(caught.value.__cause__, DBAPIError)  # chained, for debugging
    with pytest.raises(StoreError, match="failed adding metadata: no such table"):
        store.add_metadata("run", run.id, {"a": 1}, time.time())
    with pytest.raises(StoreError, match="failed reading run metadata"):
        store.get_metadata("run", [run.id])


def test_every_error_a_store_method_raises_is_a_gristmill_error(store: SQLStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE step_run_outputs"))
    for call in (
        lambda: store.get_step_run_io(["x"]),
        lambda: store.list_artifact_versions(run_id="x"),
    ):
        with pytest.raises(GristmillError):
            call()


# -- the fast path closes its cursors ----------------------------------------------------------


class _RecordingCursor:
    def __init__(self, cursor: Any, opened: list[_RecordingCursor]) -> None:
        self.cursor = cursor
        self.closed = False
        opened.append(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def close(self) -> None:
        self.closed = True
        self.cursor.close()


def _recording(conn: Any, opened: list[_RecordingCursor]) -> Any:
    """``conn`` with every cursor it opens recorded in ``opened``."""
    if isinstance(conn, DriverConnection):
        raw = conn.raw
        return DriverConnection(
            SimpleNamespace(cursor=lambda: _RecordingCursor(raw.cursor(), opened))  # type: ignore[arg-type]
        )
    dbapi = conn.connection.dbapi_connection
    return SimpleNamespace(
        dialect=conn.dialect,
        connection=SimpleNamespace(
            dbapi_connection=SimpleNamespace(
                cursor=lambda: _RecordingCursor(dbapi.cursor(), opened)
            )
        ),
    )


@pytest.mark.parametrize("driver", [True, False], ids=["sqlite3", "sqlalchemy"])
def test_prepared_statements_close_their_cursors(store: SQLStore, driver: bool) -> None:
    """On the sqlite3 module's own connection and on SQLAlchemy's, a prepared statement's
    cursor is closed whether it returned rows, nothing, or failed."""
    opened: list[_RecordingCursor] = []
    add = Prepared(
        "add", lambda: insert_of(s.artifacts, "id", "name", "created_at"), register=False
    )
    names = Prepared(
        "names", lambda: select(s.artifacts.c.name).order_by(s.artifacts.c.name), register=False
    )
    transaction = store._write(prepared=True) if driver else store._sqlalchemy_write()
    with pytest.raises(RuntimeError), transaction as real:
        conn = _recording(real, opened)
        assert isinstance(real, DriverConnection) == driver
        row = {"id": "a" * 32, "name": "a", "created_at": 1.0}
        assert execute(conn, add, row).all() == []
        execute(conn, add, [{**row, "id": "b" * 32, "name": "b"}])
        assert [r.name for r in execute(conn, names, {}).all()] == ["a", "b"]
        assert execute(conn, names, {}).first() == {"name": "a"}
        with pytest.raises(IntegrityError):
            execute(conn, add, row)  # the same key again: the driver's error as SQLAlchemy's
        raise RuntimeError("roll back")
    assert len(opened) == 5
    assert all(c.closed for c in opened)
    with store._reading("checking", prepared=driver) as conn:
        assert execute(conn, names, {}).all() == []  # rolled back


def test_sqlite_statements_are_compiled_ahead_of_time() -> None:
    """sqlite_statements.py holds what SQLAlchemy compiles each prepared statement to now."""
    from gristmill.store.sql.sqlite_statements import STATEMENTS

    assert current_sqlite_statements() == STATEMENTS, (
        "src/gristmill/store/sql/sqlite_statements.py is out of date: run `make sqlite-statements`"
    )


def test_a_step_leaves_no_cursor_open(store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole write path of one step, counting the cursors ``execute`` opens and closes."""
    from gristmill.store.sql import metrics, prepared, versions

    opened: list[_RecordingCursor] = []

    def counting(conn: Any, statement: Prepared, values: Any) -> Any:
        return prepared.execute(_recording(conn, opened), statement, values)

    from gristmill.store.sql import runs_write

    for module in (runs_write, metrics, versions):
        monkeypatch.setattr(module, "execute", counting)
    run = _run("r1")
    step = _step(run)
    store.create_run(run, [step], spec_json="{}")
    store.mark_running(step.id, started_at=time.time())
    new = NewArtifactVersion("out", "file:///x/1", "c" * 64, "json", "builtins.int", 1)
    published = store.publish_step_run(
        step.id,
        start=StepStart(time.time(), {}, "code", "key", {}),
        status=Status.COMPLETED,
        ended_at=time.time(),
        outputs={"output": new},
        metadata=[("step_run", step.id, {"m": 1})],
        logs_uri="file:///logs",
    )
    hit = store.find_cached("key")
    assert hit is not None and hit.outputs["output"].id == published["output"].id
    assert hit.metadata == {"m": 1}
    assert len(opened) >= 8
    assert all(c.closed for c in opened)
