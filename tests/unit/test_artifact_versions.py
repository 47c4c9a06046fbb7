"""Issue 10: an artifact version is one output of one step run (numbered per name, bytes shared
by content hash), and artifact versions of earlier runs are step inputs (ExternalArtifact or an
ArtifactVersion), resolved when the run starts, in lineage and in the cache key. The first test
ports ZenML's starter flow: feature engineering produces versioned datasets, training takes one
of them from an earlier run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from gristmill import Client, ExternalArtifact, RunFailedError, log_metadata, pipeline, step
from gristmill.cli.main import cli
from gristmill.errors import NotFoundError, ParameterError, PipelineDefinitionError, StoreError
from gristmill.project import Project
from gristmill.spec import PipelineSpec
from gristmill.store.ids import artifact_id
from gristmill.store.migrations import HEAD_REVISION, upgrade
from gristmill.store.sql import SQLStore

# -- the feature engineering and training pipelines of ZenML's starter, ported ----------------


@step
def load_data(rows: int = 6) -> list[float]:
    return [float(i) for i in range(rows)]


@step
def split(
    data: list[float], test_share: float = 0.5
) -> tuple[Annotated[list[float], "train_set"], Annotated[list[float], "test_set"]]:
    cut = int(len(data) * (1 - test_share))
    log_metadata({"rows": len(data)}, artifact="train_set")
    return data[:cut], data[cut:]


@pipeline
def feature_engineering(rows: int = 6, test_share: float = 0.5) -> None:
    split(load_data(rows=rows), test_share=test_share)


@step
def train(dataset: list[float], scale: float = 1.0) -> Annotated[dict[str, float], "model"]:
    return {"weight": sum(dataset) * scale}


@pipeline
def training(scale: float = 1.0) -> None:
    train(ExternalArtifact("train_set:1"), scale=scale)


def test_a_zenml_style_feature_engineering_then_training_flow() -> None:
    client = Client()
    first = feature_engineering()
    second = feature_engineering(rows=10)
    v1 = client.get_artifact_version("train_set", 1)
    v2 = client.get_artifact_version("train_set", 2)
    # one version per producing step run, each produced by its own run
    assert (v1.load(), v2.load()) == ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    assert v1.run_id == first.id and v2.run_id == second.id
    assert v1.producer is not None and v1.producer.name == "split"
    # metadata logged by the second run lands on its own version
    assert (v1.metadata["rows"], v2.metadata["rows"]) == (6, 10)
    assert client.get_artifact_version("train_set").id == v2.id  # latest: the newest

    # training takes dataset version 1 of an earlier run as its input
    trained = training()
    model = trained.steps["train"].outputs["model"]
    assert model.load() == {"weight": 3.0}
    assert trained.steps["train"].inputs["dataset"].id == v1.id
    # lineage: the model's upstream reaches the dataset version and the run that produced it
    upstream = {(av.name, av.version) for av in client.upstream(model.id)}
    assert upstream == {("train_set", 1), ("feature_engineering.load_data.output", 1)}
    reached = client.lineage(model.id).graph.step_runs.values()
    assert {(s.name, s.run_id) for s in reached} == {("train", trained.id), ("split", first.id)}
    # and the dataset version's downstream holds the training step run and its model
    downstream = client.lineage(v1.id, direction="downstream").graph
    assert trained.steps["train"].id in downstream.step_runs
    assert [av.id for av in v1.downstream()] == [model.id]
    assert v2.downstream() == []

    # the ArtifactVersion object works the same way (recorded by its id)
    @pipeline(name="training")
    def training_on_v2() -> None:
        train(v2)

    on_v2 = training_on_v2()
    assert on_v2.steps["train"].inputs["dataset"].id == v2.id
    assert on_v2.steps["train"].outputs["model"].load() == {"weight": 10.0}
    assert [av.id for av in v2.downstream()] == [on_v2.steps["train"].outputs["model"].id]

    # a third run with the same parameters is a cache hit: no new version
    third = feature_engineering(rows=10)
    assert third.steps["split"].status == "cached"
    assert third.steps["split"].outputs["train_set"].id == v2.id
    assert [av.version for av in client.list_artifact_versions(name="train_set")] == [2, 1]
    # without the cache: version 3, the same content as version 1
    fourth = feature_engineering.with_options(enable_cache=False)()
    v3 = client.get_artifact_version("train_set")
    assert v3.version == 3 and v3.run_id == fourth.id
    assert v3.content_hash == v1.content_hash and v3.uri == v1.uri  # bytes stored once
    assert [(av.name, av.version) for av in v3.same_content()] == [("train_set", 1)]
    assert v3.metadata["rows"] == 6


@step
def total(numbers: list[float]) -> float:
    return sum(numbers)


def test_an_artifact_version_object_is_a_step_input_and_part_of_the_cache_key() -> None:
    client = Client()
    feature_engineering()
    feature_engineering(rows=10)
    v1 = client.get_artifact_version("train_set", 1)
    v2 = client.get_artifact_version("train_set", 2)

    @pipeline(name="summing_versions")
    def summing(version: Any = None) -> None:
        total(v1)

    run = summing()
    assert run.steps["total"].outputs["output"].load() == 3.0
    assert run.steps["total"].inputs["numbers"].id == v1.id
    assert summing().steps["total"].status == "cached"

    @pipeline(name="summing_versions")
    def summing_latest() -> None:
        total(ExternalArtifact("train_set"))

    latest = summing_latest()
    assert latest.steps["total"].inputs["numbers"].id == v2.id
    assert latest.steps["total"].status == "completed"  # other content: another cache key
    assert latest.config["resolved_artifacts"] == {"total": {"numbers": v2.id}}
    # the same bytes under another version hit the cache: the key holds the content hash
    feature_engineering.with_options(enable_cache=False)(rows=10)
    again = summing_latest()
    assert again.steps["total"].inputs["numbers"].version == 3
    assert again.steps["total"].status == "cached"
    # reproducing and rerunning use the versions the run resolved then, not the latest now
    from gristmill.reproduce import reproduce_run, rerun

    feature_engineering.with_options(enable_cache=False)(rows=3)  # a newer "latest"
    reproduced = reproduce_run(latest.id, code="current")
    assert reproduced.new.steps["total"].inputs["numbers"].id == v2.id
    assert reproduced.matches
    again_from = rerun(latest.id, start="total", code="current")
    assert again_from.steps["total"].inputs["numbers"].id == v2.id


def test_external_artifact_references_round_trip_and_are_checked() -> None:
    assert str(ExternalArtifact("data:3")) == "data:3"
    assert ExternalArtifact("data:latest") == ExternalArtifact("data")
    assert ExternalArtifact(id="ab12cd").to_dict() == {"artifact_id": "ab12cd"}
    # "name@stage": that artifact of a model's version (tests/unit/test_models.py)
    assert ExternalArtifact("model@production").model_version == "production"
    with pytest.raises(PipelineDefinitionError, match="name@stage"):
        ExternalArtifact("model:1@production")
    with pytest.raises(PipelineDefinitionError, match="must be a number"):
        ExternalArtifact("data:x1")
    with pytest.raises(PipelineDefinitionError, match="one reference"):
        ExternalArtifact()
    with pytest.raises(PipelineDefinitionError, match="hex"):
        ExternalArtifact(id="not an id")

    spec = training.spec()
    [train_spec] = spec.steps
    assert train_spec.to_dict()["inputs"] == {"dataset": {"artifact": "train_set:1"}}
    again = PipelineSpec.from_json(spec.to_json())
    assert again.steps[0].external_inputs == {"dataset": ExternalArtifact("train_set:1")}
    assert again.hash == spec.hash

    @pipeline(name="training")
    def training_latest() -> None:
        train(ExternalArtifact("train_set"))

    assert training_latest.spec().hash != spec.hash  # the reference as written is hashed


def test_unknown_names_and_versions_fail_at_run_start_naming_step_and_argument() -> None:
    feature_engineering()

    @pipeline
    def misspelled() -> None:
        train(ExternalArtifact("train_sett:1"))

    with pytest.raises(NotFoundError) as caught:
        misspelled()
    message = str(caught.value)
    assert "step 'train'" in message and "input 'dataset'" in message
    assert "did you mean 'train_set'" in message
    assert Client().list_runs(pipeline="misspelled") == []  # nothing recorded

    @pipeline
    def too_new() -> None:
        train(ExternalArtifact("train_set:7"))

    with pytest.raises(NotFoundError, match="'train_set' has no version 7"):
        too_new()

    @pipeline
    def by_id() -> None:
        train(ExternalArtifact(id="0123abcd"))

    with pytest.raises(NotFoundError, match="no artifact version with id '0123abcd'"):
        by_id()

    @pipeline
    def twice() -> None:
        train(ExternalArtifact("train_set:1"), dataset=[1.0])

    with pytest.raises((ParameterError, TypeError, PipelineDefinitionError)):
        twice()


def test_yaml_takes_and_exports_artifact_inputs(tmp_path: Path) -> None:
    from gristmill.yaml_pipelines import load_pipeline

    feature_engineering()
    path = tmp_path / "training.yaml"
    path.write_text(
        "name: training_yaml\n"
        "steps:\n"
        "  train:\n"
        "    uses: tests.unit.test_artifact_versions:train\n"
        '    inputs: {dataset: {artifact: "train_set:1"}}\n'
    )
    loaded = load_pipeline(str(path))
    run = loaded()
    assert run.steps["train"].inputs["dataset"].version == 1
    exported = CliRunner().invoke(
        cli, ["pipeline", "export", "tests.unit.test_artifact_versions:training"]
    )
    assert exported.exit_code == 0, exported.output
    assert "artifact: train_set:1" in exported.output


def test_versions_are_numbered_per_step_run_and_never_reuse_a_deleted_number() -> None:
    client = Client()
    for _ in range(3):
        feature_engineering.with_options(enable_cache=False)()
    versions = client.list_artifact_versions(name="train_set")
    assert [av.version for av in versions] == [3, 2, 1]
    assert len({av.id for av in versions}) == 3 and len({av.uri for av in versions}) == 1
    newest_run = versions[0].run_id
    assert newest_run is not None
    client.delete_runs([newest_run])
    feature_engineering.with_options(enable_cache=False)()
    assert [av.version for av in client.list_artifact_versions(name="train_set")] == [4, 2, 1]
    result = CliRunner().invoke(cli, ["artifacts", "show", "train_set:4"])
    assert result.exit_code == 0, result.output
    assert "same content" in result.output and "train_set:2, train_set:1" in result.output


def test_each_step_run_is_one_write_transaction(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-step write path stays one transaction per step, new versions included: the run's
    creation, one per step, the run's end; all on the sqlite3 module's own connections (the
    statements compiled ahead of time), none through SQLAlchemy."""
    from sqlalchemy import event

    store: Any = project.store()
    writes: list[str] = []
    through_sqlalchemy: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        through_sqlalchemy.append(statement)

    feature_engineering.with_options(enable_cache=False)()  # the pipeline version exists
    store._sqlite_file.close()  # idle connections: new ones are traced
    real_take = store._sqlite_file._take

    def traced() -> Any:
        raw = real_take()
        raw.set_trace_callback(lambda sql: writes.append(sql) if sql == "BEGIN IMMEDIATE" else None)
        return raw

    monkeypatch.setattr(store._sqlite_file, "_take", traced)
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        feature_engineering.with_options(enable_cache=False)()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
        monkeypatch.undo()
        store._sqlite_file.close()
    assert len(writes) == 1 + 2 + 1
    assert through_sqlalchemy == []
    assert [av.version for av in Client().list_artifact_versions(name="train_set")] == [2, 1]


# -- migration from revision 0002 --------------------------------------------------------------


def test_migrating_a_0002_store_keeps_ids_and_numbers_and_starts_the_counters(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        upgrade(conn, "0002")
    with engine.begin() as conn:  # rows as gristmill 0002 wrote them: one version per content
        conn.execute(text("INSERT INTO pipelines (id, name, created_at) VALUES ('p', 'fe', 1.0)"))
        conn.execute(
            text(
                "INSERT INTO pipeline_versions (id, pipeline_id, spec_hash, spec, created_at) "
                "VALUES ('pv', 'p', 'h', '{}', 1.0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (id, name, pipeline_id, pipeline_version_id, status, "
                "created_at) VALUES ('r', 'fe-1', 'p', 'pv', 'completed', 1.0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO step_runs (id, run_id, name, position, source, status, created_at, "
                "attempts) VALUES ('s', 'r', 'split', 0, 'm:split', 'completed', 1.0, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO artifacts (id, name, created_at) VALUES "
                "(:a, 'train_set', 1.0), (:b, 'empty', 1.0)"
            ),
            {"a": artifact_id("train_set"), "b": artifact_id("empty")},
        )
        for version_id, version, content in (("old1", 1, "c1"), ("old3", 3, "c3")):
            conn.execute(
                text(
                    "INSERT INTO artifact_versions (id, artifact_id, version, uri, content_hash, "
                    "materializer, data_type, size, producer_step_run_id, created_at) VALUES "
                    "(:id, :a, :v, :uri, :c, 'json', 'builtins.list', 1, 's', 1.0)"
                ),
                {
                    "id": version_id,
                    "a": artifact_id("train_set"),
                    "v": version,
                    "uri": f"/store/{content}",
                    "c": content,
                },
            )
    engine.dispose()

    store = SQLStore(url)  # opening it upgrades it
    try:
        assert {(av.id, av.version) for av in store.list_artifact_versions(name="train_set")} == {
            ("old1", 1),
            ("old3", 3),
        }
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        counters = dict(conn.execute("SELECT name, last_version FROM artifacts"))
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert counters == {"train_set": 3, "empty": 0}
    assert revision == HEAD_REVISION  # upgraded to the newest
    # the next version continues after the highest number
    from gristmill.store.sql.versions import claim_version_number

    store = SQLStore(url)
    try:
        with store._write() as conn:
            assert claim_version_number(conn, artifact_id("train_set"), "train_set", 2.0) == 4
            assert claim_version_number(conn, "new-id", "new_artifact", 2.0) == 1
    finally:
        store.close()


def test_a_changed_cache_row_is_refused_before_it_is_linked(project: Project) -> None:
    """Security finding 4b under the new identity (the rest is in test_security_stores.py)."""
    first = feature_engineering()
    version = first.steps["split"].outputs["train_set"]
    with sqlite3.connect(project.directory / "metadata.db") as conn:
        conn.execute(
            "UPDATE artifact_versions SET data_type = 'os.system' WHERE id = ?", (version.id,)
        )
    with pytest.raises(RunFailedError) as caught:
        feature_engineering()
    failed = caught.value.run
    assert failed is not None
    error = Client().get_run(failed.id).steps["split"].error or ""
    assert "refusing to reuse it" in error and "data_type is 'os.system'" in error


def test_store_errors_are_gristmill_errors() -> None:
    assert issubclass(StoreError, RuntimeError)
