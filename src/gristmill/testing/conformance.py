"""Conformance suites: what every artifact store, metadata store and orchestrator flavor must
do. Subclass one in a test module and provide its fixture; gristmill's own tests run them
against every built-in flavor::

    from gristmill.testing.conformance import ArtifactStoreConformance

    class TestMyStore(ArtifactStoreConformance):
        @pytest.fixture
        def artifact_store(self, tmp_path):
            return MyStore(...)

- ``ArtifactStoreConformance`` needs ``artifact_store`` (an ArtifactStore instance).
- ``MetadataStoreConformance`` needs ``metadata_store_url`` (a URL of an empty database).
- ``OrchestratorConformance`` needs ``orchestrator`` (``{"flavor": ..., **settings}``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest

from gristmill.artifacts import ArtifactStore, load_artifact, save_artifact
from gristmill.errors import ArtifactStoreError, NotFoundError, RunFailedError, StoreError
from gristmill.project import Project
from gristmill.testing import temporary_project

# -- artifact stores ------------------------------------------------------------------------------


class ArtifactStoreConformance:
    """Content-addressed, deduplicated, complete-before-visible storage of artifact bytes."""

    def round_trip(self, store: ArtifactStore, value: Any) -> Any:
        saved = save_artifact(store, value, where="conformance")
        assert store.exists(saved.content.uri)
        return load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)

    def test_builtin_values_round_trip(self, artifact_store: ArtifactStore) -> None:
        for value in (42, "text", [1, 2.5, None], {"a": {"b": [1]}}, (1, 2), b"\x00bytes"):
            assert self.round_trip(artifact_store, value) == value

    def test_numpy_and_pandas_round_trip(self, artifact_store: ArtifactStore) -> None:
        np = pytest.importorskip("numpy")
        pd = pytest.importorskip("pandas")
        array = np.arange(1000, dtype="float64").reshape(10, 100)
        np.testing.assert_array_equal(self.round_trip(artifact_store, array), array)
        frame = pd.DataFrame({"x": range(50), "y": [str(i) for i in range(50)]})
        pd.testing.assert_frame_equal(self.round_trip(artifact_store, frame), frame)

    def test_the_same_bytes_are_stored_once(self, artifact_store: ArtifactStore) -> None:
        first = save_artifact(artifact_store, {"same": "bytes"}, where="conformance")
        second = save_artifact(artifact_store, {"same": "bytes"}, where="conformance")
        assert first.content == second.content
        other = save_artifact(artifact_store, {"other": "bytes"}, where="conformance")
        assert other.content.uri != first.content.uri
        assert first.content.uri.startswith(artifact_store.root)

    def test_content_is_visible_only_when_complete(self, artifact_store: ArtifactStore) -> None:
        """A reader never sees a partly written artifact: an address with files but not yet
        published does not exist, and loading it fails clearly."""
        uri = artifact_store.content_uri("0" * 64)
        assert not artifact_store.exists(uri)
        with pytest.raises(ArtifactStoreError):
            artifact_store.local_directory(uri)

    def test_blobs_and_text(self, artifact_store: ArtifactStore) -> None:
        key = f"conformance/{time.time_ns()}.json"
        artifact_store.put_blob(key, b'{"v": 1}')
        artifact_store.put_blob(key, b'{"v": 1}')  # idempotent
        assert artifact_store.get_blob(key) == b'{"v": 1}'
        with pytest.raises(ArtifactStoreError):
            artifact_store.get_blob("conformance/missing.json")
        uri = artifact_store.logs_uri("run-x", "step-y")
        artifact_store.write_text(uri, "line 1\nline 2\n")
        assert artifact_store.read_text(uri) == "line 1\nline 2\n"


# -- metadata stores ------------------------------------------------------------------------------

_PIPELINES = """
from typing import Annotated
from gristmill import ExternalArtifact, step, pipeline, log_metadata

@step
def numbers(n: int = 4) -> list:
    return list(range(n))

@step
def split(xs: list) -> tuple[Annotated[list, "evens"], Annotated[list, "odds"]]:
    return [x for x in xs if x % 2 == 0], [x for x in xs if x % 2]

@step
def total(a: list, b: list) -> Annotated[float, "total"]:
    log_metadata({"sum": float(sum(a) + sum(b))})
    return float(sum(a) + sum(b))

@pipeline
def conformance(n: int = 4):
    evens, odds = split(numbers(n))
    total(evens, odds)

@step(cache=False)
def work(i: int) -> int:
    return i * 3

@pipeline
def busy(i: int = 0):
    work(i=i)

@step
def double(x: int) -> int:
    return x * 2

@pipeline
def reuse():
    double(ExternalArtifact("busy.work.output:1"))

@step
def learn(epochs: int = 20) -> float:
    from gristmill import log_metrics
    for epoch in range(epochs):
        log_metrics({"loss": 1.0 / (epoch + 1), "acc": epoch / epochs}, step=epoch)
    return 1.0 / epochs

@pipeline(experiment="conformance-experiment")
def learning(epochs: int = 20):
    learn(epochs)

from gristmill import ArtifactConfig, Model, log_metadata

@step
def fit(k: int = 1) -> Annotated[dict, ArtifactConfig(name="conformance_clf", is_model_artifact=True)]:
    log_metadata({"score": k / 10}, infer_model=True)
    return {"k": k}

@pipeline(model=Model(name="conformance_model", description="conformance"))
def fitting(k: int = 1):
    fit(k)

@step
def apply(clf: dict) -> int:
    return clf["k"]

@pipeline
def applying():
    apply(Model(name="conformance_model", version="production").get_artifact("conformance_clf"))
"""


class MetadataStoreConformance:
    """Runs, steps, artifacts, metadata, lineage, caching, stacks and secrets, concurrency."""

    @pytest.fixture
    def store_project(self, metadata_store_url: str, tmp_path: Path) -> Iterator[Project]:
        saved = os.environ.get("GRISTMILL_STORE_URL")
        with temporary_project(tmp_path / "project") as project:
            os.environ["GRISTMILL_STORE_URL"] = metadata_store_url
            (project.root / "conformance_pipelines.py").write_text(textwrap.dedent(_PIPELINES))
            sys.path.insert(0, str(project.root))
            sys.modules.pop("conformance_pipelines", None)
            try:
                yield project
            finally:
                sys.path.remove(str(project.root))
                sys.modules.pop("conformance_pipelines", None)
                if saved is None:
                    os.environ.pop("GRISTMILL_STORE_URL", None)
                else:
                    os.environ["GRISTMILL_STORE_URL"] = saved

    def pipelines(self) -> Any:
        import importlib

        return importlib.import_module("conformance_pipelines")

    def test_a_run_is_recorded_and_read_back(self, store_project: Project) -> None:
        from gristmill import Client

        run = self.pipelines().conformance(n=5)
        again = Client().get_run(run.id)
        assert again.status == "completed"
        assert list(again.steps) == ["numbers", "split", "total"]
        assert again.steps["total"].output().load() == 10.0
        assert again.metadata == {"sum": 10.0}
        assert again.steps["split"].outputs["odds"].load() == [1, 3]
        assert Client().get_run(run.id[:10]).id == run.id
        assert Client().get_run(run.name).id == run.id
        # the pipeline and its version were written with the run
        [info] = [p for p in Client().list_pipelines() if p.name == "conformance"]
        assert (info.run_count, info.version_count) == (1, 1)
        self.pipelines().conformance(n=6)
        [info] = [p for p in Client().list_pipelines() if p.name == "conformance"]
        assert (info.run_count, info.version_count) == (2, 1)

    def test_cache_hits_link_outputs(self, store_project: Project) -> None:
        first = self.pipelines().conformance(n=3)
        second = self.pipelines().conformance(n=3)
        assert {s.status for s in second.steps.values()} == {"cached"}
        assert second.steps["total"].output().id == first.steps["total"].output().id
        assert second.metadata == {"sum": 3.0}

    def test_lineage_and_artifact_versions(self, store_project: Project) -> None:
        from gristmill import Client

        self.pipelines().conformance(n=3)
        self.pipelines().conformance(n=6)
        client = Client()
        total = client.get_artifact_version("total")
        assert total.version == 2 and total.load() == 15.0
        assert client.get_artifact_version("total:1").load() == 3.0
        upstream = {av.name for av in total.upstream()}
        assert upstream == {"evens", "odds", "conformance.numbers.output"}
        numbers = client.get_artifact_version("conformance.numbers.output")
        assert {av.name for av in numbers.downstream()} == {"evens", "odds", "total"}

    def test_a_version_per_step_run_and_versions_as_inputs(self, store_project: Project) -> None:
        """Every completed step run's output is a new version (numbers per name, never given
        twice, even after a deletion); the bytes are shared; an earlier version is an input."""
        from gristmill import Client

        runs = [self.pipelines().busy(i=1) for _ in range(3)]
        client = Client()
        versions = client.list_artifact_versions(name="busy.work.output")
        assert [(av.version, av.run_id) for av in versions] == [
            (3, runs[2].id),
            (2, runs[1].id),
            (1, runs[0].id),
        ]
        assert [av.version for av in versions[0].same_content()] == [2, 1]
        client.delete_runs([runs[2].id])
        self.pipelines().busy(i=1)
        assert client.get_artifact_version("busy.work.output").version == 4
        reused = self.pipelines().reuse()
        step_run = reused.steps["double"]
        assert step_run.inputs["x"].id == versions[2].id
        assert step_run.output().load() == 6
        assert [av.id for av in versions[2].downstream()] == [step_run.output().id]
        with pytest.raises(NotFoundError):
            client.get_artifact_version("busy.work.output", 3)  # deleted with its run

    def test_listing_and_paging(self, store_project: Project) -> None:
        from gristmill import Client

        runs = [self.pipelines().busy(i=i) for i in range(5)]
        client = Client()
        assert client.count_runs(pipeline="busy") == 5
        assert [r.id for r in client.list_runs(pipeline="busy", limit=2)] == [
            runs[4].id,
            runs[3].id,
        ]
        assert [r.id for r in client.list_runs(pipeline="busy", limit=2, offset=4)] == [runs[0].id]
        with pytest.raises(NotFoundError):
            client.get_run("no-such-run")

    def test_a_failed_step_keeps_upstream_outputs(self, store_project: Project) -> None:
        from gristmill import pipeline, step

        @step
        def ok() -> int:
            return 1

        @step
        def broken(x: int) -> int:
            raise ValueError("no")

        @pipeline
        def failing() -> None:
            broken(ok())

        with pytest.raises(RunFailedError) as caught:
            failing()
        run = caught.value.run
        assert run is not None and run.status == "failed"
        assert run.steps["ok"].output().load() == 1
        assert run.steps["broken"].status == "failed"

    def test_models_versions_and_stages(self, store_project: Project) -> None:
        from gristmill import Client

        first = self.pipelines().fitting(k=1)
        self.pipelines().fitting(k=3)
        client = Client()
        model = client.get_model("conformance_model")
        assert (model.description, model.version_count) == ("conformance", 2)
        one, two = client.get_model_version("conformance_model", 1), model.latest
        assert (one.number, two.number, two.version) == (1, 2, "2")
        assert one.metadata == {"score": 0.1} and two.metadata == {"score": 0.3}
        assert one.run is not None and one.run.id == first.id
        assert one.artifact_kinds() == {"conformance_clf": "model"}
        assert one.load_artifact("conformance_clf") == {"k": 1}
        with pytest.raises(StoreError, match="conformance_model:1"):
            client.delete_run(first.id)  # its artifact belongs to a model version
        two.set_stage("production")
        with pytest.raises(StoreError, match="version 2 is in production"):
            one.set_stage("production")
        one.set_stage("production", force=True)
        assert client.get_model_version("conformance_model", "production").number == 1
        assert client.get_model_version("conformance_model", 2).stage == "archived"
        assert [c.stage for c in two.stage_history] == ["production", "archived"]
        applied = self.pipelines().applying()
        assert applied.steps["apply"].output().load() == 1
        used = applied.steps["apply"].inputs["clf"]
        assert used.id == one.get_artifact("conformance_clf").id
        named = client.create_model_version(
            "conformance_model", artifacts={used.id: "model"}, version="hand"
        )
        assert client.get_model_version("conformance_model", "hand").number == named.number == 3
        with pytest.raises(StoreError, match="in production"):
            client.delete_model_version("conformance_model", 1)
        client.delete_model_version("conformance_model", 1, force=True)
        with pytest.raises(NotFoundError, match="no version in stage 'production'"):
            client.get_model_version("conformance_model", "production")
        assert [v.number for v in client.delete_model("conformance_model")] == [3, 2]
        with pytest.raises(NotFoundError, match="no model named"):
            client.get_model("conformance_model")

    def test_stacks_components_and_secrets(self, store_project: Project) -> None:
        store = store_project.store()
        assert store_project.stack().name == "default"  # always there, made on first use
        store.save_component("artifact_store", "other", "local", {"root": "/tmp/x"})
        store.save_stack("second", {"orchestrator": "local", "artifact_store": "other"})
        assert store.get_stack("second").components["artifact_store"].config == {"root": "/tmp/x"}
        secrets = store_project.secrets()
        secrets.create("creds", {"token": "conformance-token-value"})
        assert secrets.get("creds") == {"token": "conformance-token-value"}
        assert "conformance-token-value" not in store.get_secret("creds").ciphertext
        store.delete_stack("second")
        store.delete_component("artifact_store", "other")
        with pytest.raises(NotFoundError):
            store.get_stack("second")

    def test_misses_and_refusals_are_gristmill_errors(self, store_project: Project) -> None:
        """Nothing but gristmill's own errors crosses the interface: a lookup that finds
        nothing is NotFoundError, a refused change StoreError."""
        store = store_project.store()
        for lookup in (
            lambda: store.get_run("no-such-run"),
            lambda: store.get_step_run("0" * 32),
            lambda: store.get_artifact_version("no-such-artifact"),
            lambda: store.get_pipeline_spec("0" * 32),
            lambda: store.lineage("0" * 32),
            lambda: store.get_component("orchestrator", "no-such-component"),
            lambda: store.get_secret("no-such-secret"),
        ):
            with pytest.raises(NotFoundError):
                lookup()
        store.save_component("artifact_store", "used", "local", {"root": "/tmp/used"})
        store.save_stack("user", {"orchestrator": "local", "artifact_store": "used"})
        with pytest.raises(StoreError, match="is used by stack"):
            store.delete_component("artifact_store", "used")
        run = self.pipelines().busy(i=1)
        with pytest.raises(StoreError, match="already exists"):
            self.pipelines().busy.with_options(run_name=run.name)(i=2)

    def test_stop_requests(self, store_project: Project) -> None:
        """A stop request turns an unfinished run ``stopping``; a finished run keeps its
        final status; an unknown run is NotFoundError."""
        import time

        from gristmill.store import Status

        store = store_project.store()
        finished = self.pipelines().busy(i=3)
        assert store.request_stop(finished.id, at=time.time()) == Status.COMPLETED
        assert store.get_run(finished.id).status == Status.COMPLETED
        with pytest.raises(NotFoundError):
            store.request_stop("0" * 32, at=time.time())
        # A run handed to an engine that has not started it yet.
        import dataclasses
        import uuid

        record = store.get_run(finished.id)
        held = dataclasses.replace(
            record,
            id=uuid.uuid4().hex,
            name=f"{record.name}-held",
            status=Status.SUBMITTED,
            started_at=None,
            ended_at=None,
            pid=None,
        )
        store.create_run(held, [], spec_json=store.get_pipeline_spec(record.pipeline_version_id))
        assert store.get_run(held.id).status == Status.SUBMITTED
        assert store.request_stop(held.id, at=time.time()) == Status.STOPPING
        assert store.get_run(held.id).status == Status.STOPPING

    def test_deleting_runs(self, store_project: Project) -> None:
        """A run goes with its steps, edges, metadata and the versions only it holds; versions
        other runs also list as outputs (cache hits) stay; a running run, and one whose
        versions another run consumed, are refused with nothing deleted."""
        from gristmill import Client
        from gristmill.store import Entity, RunRecord, Status, StepRunRecord, StepStart
        from gristmill.store.ids import pipeline_version_id

        store = store_project.store()
        first = self.pipelines().conformance(n=3)
        cached = self.pipelines().conformance(n=3)
        other = self.pipelines().conformance(n=7)
        client = Client()
        total = first.steps["total"].output()

        # Everything 'first' produced is an output of 'cached' too: kept, now produced there.
        deleted = client.delete_run(first.name)
        assert [r.id for r in deleted.runs] == [first.id]
        assert deleted.step_runs == 3 and deleted.artifact_versions == []
        assert {av.artifact_name for av in deleted.kept_artifact_versions} == {
            "conformance.numbers.output",
            "evens",
            "odds",
            "total",
        }
        with pytest.raises(NotFoundError):
            client.get_run(first.id)
        assert store.get_metadata(Entity.RUN, [first.id])[first.id] == []
        kept = client.get_artifact_version(total.id)
        assert kept.producer is not None and kept.producer.run.id == cached.id
        assert kept.load() == 3.0  # the bytes are untouched
        assert client.get_run(cached.id).steps["total"].cached_from is None

        # A version only 'other' holds goes with it, with its metadata.
        other_total = other.steps["total"].output()
        step_ids = [s.id for s in other.steps.values()]
        assert client.delete_runs([other.id], dry_run=True).runs[0].id == other.id
        client.get_run(other.id)  # a dry run deletes nothing
        deleted = client.delete_run(other.id)
        assert {av.artifact_name for av in deleted.artifact_versions} == {
            "conformance.numbers.output",
            "evens",
            "odds",
            "total",
        }
        with pytest.raises(NotFoundError):
            client.get_artifact_version(other_total.id)
        assert all(not v for v in store.get_metadata(Entity.STEP_RUN, step_ids).values())
        assert store.get_step_run_io(step_ids) in ({}, {i: ({}, {}) for i in step_ids})

        # A run whose version another run took as an input, and a running run: refused.
        source = self.pipelines().busy(i=11)
        produced = source.steps["work"].output()
        now = time.time()
        spec_hash = "f" * 64
        consumer = RunRecord(
            id="c" * 32,
            name="consumer-run",
            pipeline_name="consumer",
            pipeline_version_id=pipeline_version_id("consumer", spec_hash),
            status=Status.RUNNING,
            created_at=now,
            spec_hash=spec_hash,
        )
        step = StepRunRecord(
            id="d" * 32,
            run_id=consumer.id,
            name="use",
            source="m:use",
            status=Status.PENDING,
            created_at=now,
        )
        store.create_run(consumer, [step], spec_json="{}")
        store.publish_step_run(
            step.id,
            start=StepStart(now, {"x": produced.id}, "code", None, {}),
            status=Status.COMPLETED,
            ended_at=now,
            outputs={},
        )
        with pytest.raises(StoreError, match="consumer-run") as refused:
            client.delete_run(source.id)
        assert "busy.work.output:" in str(refused.value)
        client.get_run(source.id)  # nothing was deleted
        with pytest.raises(StoreError, match="still running"):
            client.delete_runs([source.id, consumer.id])
        # together, with --force for the running one: both go, the version with them
        deleted = client.delete_runs([source.id, consumer.id], force=True)
        assert {r.name for r in deleted.runs} == {source.name, "consumer-run"}
        assert [av.id for av in deleted.artifact_versions] == [produced.id]
        with pytest.raises(NotFoundError):
            client.get_run("consumer-run")

    def test_metric_series(self, store_project: Project) -> None:
        """Every point of a series in order, with its step run; NaN and infinities kept; the
        last value as metadata; points logged later on the run numbered after the others;
        deleting the run deletes its points."""
        import math

        from gristmill import Client, log_metric

        store = store_project.store()
        run = self.pipelines().learning(epochs=20)
        points = store.metric_history(run.id, "loss")
        assert [p.step for p in points] == list(range(20))
        assert [p.value for p in points] == [1.0 / (i + 1) for i in range(20)]
        step_run = run.steps["learn"].id
        assert {p.step_run_id for p in points} == {step_run}
        assert store.metric_history(run.id, "loss", step_run_id="0" * 32) == []
        assert store.metric_names([run.id, "0" * 32]) == {run.id: ["acc", "loss"], "0" * 32: []}
        assert run.metadata == {"loss": 1.0 / 20, "acc": 19 / 20}
        log_metric("loss", math.nan, run=run.id)
        log_metric("loss", math.inf, run=run.id)
        later = store.metric_history(run.id, "loss")[20:]
        assert [p.step for p in later] == [20, 21] and later[0].step_run_id is None
        assert math.isnan(later[0].value) and later[1].value == math.inf
        with pytest.raises(NotFoundError):
            log_metric("loss", 1.0, run="no-such-run")
        Client().delete_run(run.id)
        assert store.metric_history(run.id, "loss") == []

    def test_experiments_and_comparisons(self, store_project: Project) -> None:
        from gristmill import Client

        long = self.pipelines().learning(epochs=20)
        short = self.pipelines().learning(epochs=4)
        other = self.pipelines().busy(i=2)
        client = Client()
        assert [r.id for r in client.list_runs(experiment="conformance-experiment")] == [
            short.id,
            long.id,
        ]
        assert client.count_runs(experiment="conformance-experiment") == 2
        assert client.get_run(other.id).experiment == "busy"  # the pipeline's, by default
        found = {e.name: e.run_count for e in client.list_experiments()}
        assert found == {"conformance-experiment": 2, "busy": 1}
        rows = client.comparison([long.id, short.name], sort="-acc").rows
        assert [(r["run"], r["params.epochs"]) for r in rows] == [(long.name, 20), (short.name, 4)]
        assert rows[1]["metrics.acc"] == 3 / 4 and rows[1]["metrics.loss"] == 1 / 4
        latest = client.comparison(experiment="conformance-experiment", last=1).rows
        assert [r["id"] for r in latest] == [short.id]

    def test_concurrent_processes_lose_nothing(
        self, store_project: Project, metadata_store_url: str
    ) -> None:
        script = store_project.root / "hammer.py"
        script.write_text(
            "import sys\nfrom conformance_pipelines import busy\n"
            "for _ in range(5):\n    busy(i=int(sys.argv[1]))\n"
        )
        env = {
            **os.environ,
            "GRISTMILL_STORE_URL": metadata_store_url,
            "PYTHONPATH": f"{store_project.root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        processes = [
            subprocess.Popen(
                [sys.executable, str(script), str(i)],
                cwd=store_project.root,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(8)
        ]
        for process in processes:
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            assert "locked" not in err
        from gristmill import Client

        client = Client()
        assert client.count_runs(pipeline="busy") == 40
        runs = client.list_runs(pipeline="busy", limit=100)
        assert {r.status for r in runs} == {"completed"}
        assert sorted({r.steps["work"].output().load() for r in runs}) == [i * 3 for i in range(8)]
        # one version per step run, numbered without gaps or duplicates by concurrent writers;
        # the bytes are shared: one content hash per distinct value
        versions = client.list_artifact_versions(name="busy.work.output", limit=100)
        assert sorted(av.version for av in versions) == list(range(1, 41))
        assert client.get_artifact_version("busy.work.output").version == 40
        assert len({av.content_hash for av in versions}) == 8


# -- orchestrators -------------------------------------------------------------------------------


class OrchestratorConformance:
    """The same results and semantics on every orchestrator: order, parallel branches, several
    outputs, failures, caching, logs."""

    @pytest.fixture(autouse=True)
    def _project(self, tmp_path: Path) -> Iterator[Project]:
        with temporary_project(tmp_path / "project") as project:
            yield project

    def run(self, pipeline: Any, orchestrator: dict[str, Any], **parameters: Any) -> Any:
        return pipeline.with_options(orchestrator=orchestrator)(**parameters)

    def test_a_diamond(self, orchestrator: dict[str, Any]) -> None:
        from gristmill import pipeline, step

        @step
        def source(n: int = 5) -> list[int]:
            return list(range(n))

        @step
        def square(xs: list[int]) -> list[int]:
            return [x * x for x in xs]

        @step
        def double(xs: list[int]) -> list[int]:
            return [2 * x for x in xs]

        @step
        def join(a: list[int], b: list[int]) -> Annotated[int, "joined"]:
            print("joining")
            return sum(a) + sum(b)

        @pipeline
        def diamond(n: int = 5) -> None:
            xs = source(n)
            join(square(xs), double(xs))

        run = self.run(diamond, orchestrator, n=4)
        assert run.orchestrator == orchestrator["flavor"]
        assert run.steps["join"].output().load() == (0 + 1 + 4 + 9) + (0 + 2 + 4 + 6)
        assert run.steps["join"].logs() == "joining\n"
        started = {name: s.started_at for name, s in run.steps.items()}
        ended = {name: s.ended_at for name, s in run.steps.items()}
        assert ended["source"] <= started["square"] and ended["source"] <= started["double"]
        assert max(ended["square"], ended["double"]) <= started["join"]
        cached = self.run(diamond, orchestrator, n=4)
        assert {s.status for s in cached.steps.values()} == {"cached"}

    def test_failures_stop_dependents_only(self, orchestrator: dict[str, Any]) -> None:
        from gristmill import pipeline, step

        @step
        def fine() -> int:
            return 1

        @step
        def broken(x: int) -> int:
            raise RuntimeError("broken on purpose")

        @step
        def after(x: int) -> int:
            return x

        @pipeline
        def partly() -> None:
            after(broken(fine()))
            fine(id="independent")

        with pytest.raises(RunFailedError, match="broken on purpose") as caught:
            self.run(partly, orchestrator)
        run = caught.value.run
        assert run is not None
        statuses = {n: s.status for n, s in run.steps.items()}
        # 'fine' and 'independent' compute the same thing, so whichever of them starts after
        # the other ended is a cache hit of it (either order, on a parallel orchestrator)
        twins = sorted([statuses.pop("fine"), statuses.pop("independent")])
        assert twins in (["completed", "completed"], ["cached", "completed"])
        assert statuses == {"broken": "failed", "after": "stopped"}

    def test_several_outputs_and_retries(self, orchestrator: dict[str, Any]) -> None:
        from gristmill import pipeline, step

        attempts: list[int] = []

        @step(retries=1)
        def flaky() -> tuple[Annotated[int, "a"], Annotated[int, "b"]]:
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError("first try fails")
            return 1, 2

        @pipeline
        def outputs() -> None:
            flaky()

        run = self.run(outputs, orchestrator)
        assert run.steps["flaky"].outputs["b"].load() == 2
        assert run.steps["flaky"].attempts == 2
