"""Issue 12, models: a run with a Model creates (or reuses) a model version and links its
outputs to it; versions carry metadata, stages (one version per exclusive stage, forced
moves archive the holder, history with who and when) and their artifacts; an inference
pipeline takes "the production model" by stage, resolved at each run and kept in lineage;
the `gristmill models` commands; `model:` in run configurations and YAML pipelines."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner

from gristmill import (
    ArtifactConfig,
    Client,
    ExternalArtifact,
    Model,
    ModelVersion,
    get_step_context,
    log_metadata,
    pipeline,
    step,
)
from gristmill.cli.main import cli
from gristmill.errors import (
    GristmillError,
    InvalidMetadataError,
    NotFoundError,
    PipelineDefinitionError,
    StoreError,
)
from gristmill.options import RunConfig
from gristmill.project import Project
from gristmill.spec import StepSpec

# -- a training flow in the style of ZenML's starter ---------------------------------------------


@step
def load_wines(rows: int = 20) -> Annotated[list[float], "wine_data"]:
    return [float(i % 7) for i in range(rows)]


@step
def train_model(
    data: list[float], model_type: str = "sgd"
) -> Annotated[dict[str, Any], ArtifactConfig(name="clf", is_model_artifact=True, tags=["wine"])]:
    accuracy = {"sgd": 0.71, "rf": 0.83}[model_type]
    log_metadata({"accuracy": accuracy, "model_type": model_type}, infer_model=True)
    current = get_step_context().model
    return {"type": model_type, "mean": sum(data) / len(data), "built_for": current.version}


@step(cache=False)  # it acts on the registry: a cached run would skip it
def promote_if_better() -> None:
    """Promote this run's version to production when it beats the one there (by accuracy)."""
    current = get_step_context().model
    production = Client().get_model(current.name).stage("production")
    if production is None or production.metadata["accuracy"] < current.metadata["accuracy"]:
        current.set_stage("production", force=True)


@pipeline(model=Model(name="wine_clf", description="Wine quality", license="MIT"))
def training(model_type: str = "sgd") -> None:
    train_model(load_wines(), model_type=model_type)
    promote_if_better(after="train_model")


@step
def predict(clf: dict[str, Any], data: list[float]) -> Annotated[list[float], "predictions"]:
    return [x * clf["mean"] for x in data]


@pipeline
def inference() -> None:
    production = Model(name="wine_clf", version="production")
    predict(production.get_artifact("clf"), load_wines(rows=3))


def _config(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _train_twice(tmp_path: Path) -> tuple[Any, Any]:
    sgd = _config(tmp_path, "sgd.yaml", "parameters: {model_type: sgd}\n")
    rf = _config(
        tmp_path,
        "rf.yaml",
        "parameters: {model_type: rf}\nmodel: {name: wine_clf, tags: [forest]}\n",
    )
    return training.with_options(config=sgd)(), training.with_options(config=rf)()


def test_two_trainings_make_two_versions_with_metrics_and_the_better_one_is_promoted(
    tmp_path: Path,
) -> None:
    first, second = _train_twice(tmp_path)
    client = Client()
    model = client.get_model("wine_clf")
    assert (model.description, model.license, model.version_count) == ("Wine quality", "MIT", 2)
    one, two = model.get_version(1), model.get_version(2)
    assert isinstance(one, ModelVersion)
    assert (one.name, one.version, one.number) == ("wine_clf", "1", 1)
    assert one.metadata == {"accuracy": 0.71, "model_type": "sgd"}
    assert two.metadata == {"accuracy": 0.83, "model_type": "rf"}
    assert one.run is not None and one.run.id == first.id
    assert two.run is not None and two.run.id == second.id
    # run 1 promoted itself (nothing in production), run 2 beat it: forced, run 1 archived
    assert client.get_model_version("wine_clf", "production") == two
    assert client.get_model_version("wine_clf", "latest") == two
    assert client.get_model_version("wine_clf", 1).stage == "archived"
    assert [(c.previous_stage, c.stage) for c in one.stage_history] == [
        (None, "production"),
        ("production", "archived"),
    ]
    assert "replaced in production by version 2" in str(one.stage_history[1].note)
    # outputs linked: the model artifact marked, unmarked outputs as data
    assert two.artifact_kinds() == {"wine_data": "data", "clf": "model"}
    assert set(two.model_artifacts) == {"clf"} and set(two.data_artifacts) == {"wine_data"}
    assert two.load_artifact("clf")["type"] == "rf"
    assert two.get_artifact("clf").load()["built_for"] == "2"  # the step saw its version
    assert two.get_artifact("clf").metadata["tags"] == ["wine"]
    assert two.tags == ["forest"]
    # load_wines was cached in run 2: the same data version is linked to both versions
    assert one.get_artifact("wine_data").id == two.get_artifact("wine_data").id
    with pytest.raises(NotFoundError, match="has no artifact 'clff' — did you mean 'clf'"):
        two.get_artifact("clff")


def test_inference_takes_the_production_model_by_stage_at_each_run(tmp_path: Path) -> None:
    _train_twice(tmp_path)
    client = Client()
    production = client.get_model_version("wine_clf", "production")
    run = inference()
    used = run.steps["predict"].inputs["clf"]
    assert used.id == production.get_artifact("clf").id
    # lineage: the predictions reach the production model's artifact and its training data
    predictions = run.steps["predict"].outputs["predictions"]
    upstream = {f"{a.name}:{a.version}" for a in predictions.upstream()}
    trained_on = production.get_artifact("clf").producer
    assert trained_on is not None
    assert f"clf:{used.version}" in upstream
    assert {f"{a.name}:{a.version}" for a in trained_on.inputs.values()} <= upstream
    # the spec records the stage, not a version: promoting version 1 changes the next run
    assert run.spec.step("predict").to_dict()["inputs"]["clf"] == {
        "artifact": "clf@production",
        "model": "wine_clf",
    }
    client.get_model_version("wine_clf", 1).set_stage("production", force=True)
    again = inference()
    assert (
        again.steps["predict"].inputs["clf"].id
        == client.get_model_version("wine_clf", 1).get_artifact("clf").id
    )
    # the short spelling finds the model from the artifact's name
    assert ExternalArtifact("clf@production").model_version == "production"


@step
def take(clf: dict[str, Any]) -> str:
    return str(clf["type"])


def test_a_missing_stage_or_artifact_fails_at_run_start_naming_the_fix() -> None:
    @pipeline
    def use_staging() -> None:
        take(ExternalArtifact("clf@staging", model="wine_clf"))

    @pipeline
    def use_unknown() -> None:
        take(ExternalArtifact("nothing@production"))

    training()
    with pytest.raises(NotFoundError, match=r"no version in stage 'staging'.*models promote"):
        use_staging()
    with pytest.raises(NotFoundError, match="no model version links an artifact named"):
        use_unknown()
    with pytest.raises(PipelineDefinitionError, match="name@stage"):
        ExternalArtifact("clf@")
    with pytest.raises(PipelineDefinitionError, match="give the artifact and the model version"):
        ExternalArtifact("clf:2", model="wine_clf")


def test_stage_exclusivity_force_and_who_moved_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_USER", "ana")
    training()
    training(model_type="rf")
    client = Client()
    one, two = client.get_model_version("wine_clf", 1), client.get_model_version("wine_clf", 2)
    assert (one.stage, two.stage) == ("archived", "production")
    one.set_stage("staging")
    with pytest.raises(StoreError, match=r"wine_clf version 2 is in production.*--force"):
        one.set_stage("production")
    assert one.refresh().stage == "staging"
    one.set_stage("production", force=True, note="rollback")
    assert client.get_model_version("wine_clf", "production") == one
    assert client.get_model_version("wine_clf", 2).stage == "archived"
    last = one.stage_history[-1]
    assert (last.user, last.previous_stage, last.stage, last.note) == (
        "ana",
        "staging",
        "production",
        "rollback",
    )
    # archived holds any number of versions
    two.set_stage("archived")
    one.set_stage("archived", force=False)
    assert len(client.get_model("wine_clf").versions) == 2
    assert {v.number for v in client.get_model("wine_clf").versions if v.stage == "archived"} == {
        1,
        2,
    }
    with pytest.raises(StoreError, match="'prod' is not a stage"):
        one.set_stage("prod")


@step
def fit_named() -> Annotated[int, ArtifactConfig(name="named_clf", is_model_artifact=True)]:
    return get_step_context().model.number


def test_versions_by_name_number_stage_and_latest() -> None:
    @pipeline(model=Model(name="named", version="rf"))
    def named() -> None:
        fit_named()

    first, second = named(), named.with_options(enable_cache=False)()
    client = Client()
    rf = client.get_model_version("named", "rf")
    assert (rf.version, rf.number) == ("rf", 1)
    assert rf.run is not None and rf.run.id == first.id  # created by the first run only
    assert [v.number for v in client.get_model("named").versions] == [1]
    assert sorted(a.version for a in [rf.get_artifact("named_clf")]) == [2]  # newest linked
    assert second.steps["fit_named"].output().load() == 1
    assert client.get_model_version("named", 1) == client.get_model_version("named", "1") == rf
    with pytest.raises(NotFoundError, match="has no version '7'"):
        client.get_model_version("named", 7)
    with pytest.raises(NotFoundError, match=r"no model named 'namd' — did you mean 'named'"):
        client.get_model("namd")

    @pipeline(model=Model(name="named", version=5))
    def missing() -> None:
        fit_named()

    with pytest.raises(NotFoundError, match=r"Model\(name='named', version='5'\)"):
        missing()


@step(model=Model(name="side_model"))
def side() -> Annotated[int, "side_out"]:
    log_metadata({"side": True}, infer_model=True)
    return 1


@step
def main_step() -> Annotated[int, "main_out"]:
    return 2


def test_a_step_model_wins_over_the_pipelines() -> None:
    @pipeline(model=Model(name="main_model"))
    def both() -> None:
        side()
        main_step()

    run = both()
    client = Client()
    assert set(client.get_model_version("side_model").artifacts) == {"side_out"}
    assert client.get_model_version("side_model").metadata == {"side": True}
    assert set(client.get_model_version("main_model").artifacts) == {"main_out"}
    assert run.config["resolved_models"]["side"][0] == "side_model"


@step
def no_model_step() -> int:
    get_step_context().model  # noqa: B018 - raises: the run has no model
    return 1


@step
def infer_without_model() -> int:
    log_metadata({"x": 1}, infer_model=True)
    return 1


def test_model_needs_a_model_and_metadata_can_name_one() -> None:
    @pipeline
    def plain() -> None:
        no_model_step()

    @pipeline
    def plain_infer() -> None:
        infer_without_model()

    with pytest.raises(GristmillError, match="runs without a model"):
        plain()
    with pytest.raises(GristmillError, match="the run has no model"):
        plain_infer()
    training()
    log_metadata({"reviewed": "yes"}, model="wine_clf", model_version=1)
    log_metadata({"owner": "ana"}, model=Model(name="wine_clf", version="production"))
    assert Client().get_model_version("wine_clf", 1).metadata["reviewed"] == "yes"
    assert Client().get_model_version("wine_clf", 1).metadata["owner"] == "ana"
    with pytest.raises(InvalidMetadataError, match="outside a step"):
        log_metadata({"a": 1}, infer_model=True)


def test_model_options_merge_and_round_trip() -> None:
    assert Model(name="m", version=3).version == "3"
    config = RunConfig.from_dict({"model": {"name": "wine_clf", "version": "rf"}})
    assert config.model == Model(name="wine_clf", version="rf")
    assert config.to_dict()["model"] == {"name": "wine_clf", "version": "rf"}
    assert RunConfig.from_dict({"model": "wine_clf"}).model == Model(name="wine_clf")
    # a chosen model replaces the one below it whole
    merged = RunConfig(model=Model(name="a", description="x")).merged(RunConfig(model="b"))
    assert merged.model == Model(name="b")
    with pytest.raises(PipelineDefinitionError, match="version 0"):
        Model(name="m", version=0)
    with pytest.raises(PipelineDefinitionError, match="model name"):
        Model(name="bad name")
    spec = StepSpec.from_dict(
        {
            "id": "s",
            "source": "m:f",
            "outputs": {"clf": {"type": "builtins.dict", "artifact_kind": "model", "tags": ["a"]}},
        }
    )
    assert spec.outputs["clf"].artifact_kind == "model" and spec.to_dict()["outputs"]["clf"][
        "tags"
    ] == ["a"]
    assert train_model.outputs["clf"].artifact_kind == "model"
    assert load_wines.outputs["wine_data"].artifact_kind is None


def test_a_yaml_pipeline_with_a_model_block_and_a_stage_input(project: Project) -> None:
    from gristmill import load_pipeline

    (project.root / "wine_steps.py").write_text(
        textwrap.dedent(
            """
            from typing import Annotated
            from gristmill import ArtifactConfig, step

            @step
            def fit(k: int = 2) -> Annotated[dict, ArtifactConfig(name="yclf", is_model_artifact=True)]:
                return {"k": k}

            @step
            def use(clf: dict) -> int:
                return clf["k"] * 10
            """
        )
    )
    (project.root / "train.yaml").write_text(
        textwrap.dedent(
            """
            name: ytrain
            model: {name: yaml_clf, version: rf, description: from yaml}
            steps:
              fit: {uses: "wine_steps:fit"}
            """
        )
    )
    (project.root / "infer.yaml").write_text(
        textwrap.dedent(
            """
            name: yinfer
            steps:
              use: {uses: "wine_steps:use", inputs: {clf: {artifact: "yclf@rf", model: yaml_clf}}}
            """
        )
    )
    import sys

    sys.path.insert(0, str(project.root))
    try:
        load_pipeline(project.root / "train.yaml")()
        version = Client().get_model_version("yaml_clf", "rf")
        assert version.model.description == "from yaml"
        run = load_pipeline(project.root / "infer.yaml")()
        assert run.steps["use"].output().load() == 20
        assert run.steps["use"].inputs["clf"].id == version.get_artifact("yclf").id
    finally:
        sys.path.remove(str(project.root))
        sys.modules.pop("wine_steps", None)


# -- the CLI -----------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_models_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_USER", "ci")
    _train_twice(tmp_path)
    listed = _cli("models", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.output)
    assert (entry["name"], entry["version_count"], entry["production"]) == ("wine_clf", 2, "2")
    assert "wine_clf" in _cli("model", "list").output  # the singular works too
    versions = _cli("models", "versions", "wine_clf", "--json")
    assert [
        (v["number"], v["stage"], v["metadata"]["accuracy"]) for v in json.loads(versions.output)
    ] == [(2, "production", 0.83), (1, "archived", 0.71)]
    table = _cli("models", "versions", "wine_clf").output
    assert "production" in table and "accuracy=0.83" in table
    shown = json.loads(_cli("models", "show", "wine_clf", "production", "--json").output)
    assert shown["number"] == 2 and shown["model"]["description"] == "Wine quality"
    assert {a["name"]: a["kind"] for a in shown["artifacts"]} == {
        "wine_data": "data",
        "clf": "model",
    }
    human = _cli("models", "show", "wine_clf", "1").output
    assert "stage history" in human and "production → archived" in human

    refused = _cli("models", "promote", "wine_clf", "1", "production")
    assert refused.exit_code == 1 and "version 2 is in production" in refused.output
    promoted = _cli("models", "promote", "wine_clf", "1", "production", "--force", "--json")
    assert promoted.exit_code == 0 and json.loads(promoted.output)["stage"] == "production"
    assert json.loads(promoted.output)["stage_history"][-1]["user"] == "ci"

    in_production = _cli("models", "delete", "wine_clf", "1", "--yes")
    assert in_production.exit_code == 1 and "in production" in in_production.output
    deleted = _cli("models", "delete", "wine_clf", "2", "--json")
    assert deleted.exit_code == 0 and json.loads(deleted.output)["deleted_versions"] == ["2"]

    registered = _cli("models", "register", "hand_made", "--description", "by hand", "--json")
    assert registered.exit_code == 0 and json.loads(registered.output)["description"] == "by hand"
    clf = Client().get_model_version("wine_clf", 1).get_artifact("clf")
    made = _cli(
        "models",
        "register",
        "hand_made",
        "--artifact",
        f"clf:{clf.version}",
        "--artifact",
        "data=wine_data:1",
        "--version",
        "v-hand",
        "--stage",
        "staging",
        "--json",
    )
    assert made.exit_code == 0, made.output
    version = json.loads(made.output)
    assert (version["version"], version["stage"]) == ("v-hand", "staging")
    assert {a["name"]: a["kind"] for a in version["artifacts"]} == {
        "clf": "model",
        "wine_data": "data",
    }
    assert Client().get_model_version("hand_made", "staging").load_artifact("clf")["type"] == "sgd"
    unknown = _cli("models", "show", "nope")
    assert unknown.exit_code == 1 and "no model named 'nope'" in unknown.output
    whole = _cli("models", "delete", "wine_clf", "--yes")
    assert whole.exit_code == 1 and "in production" in whole.output
    assert _cli("models", "delete", "wine_clf", "--yes", "--force").exit_code == 0
    assert [m.name for m in Client().list_models()] == ["hand_made"]


def test_deleting_a_run_whose_artifacts_a_model_version_holds_is_refused() -> None:
    run = training()
    client = Client()
    with pytest.raises(StoreError, match=r"model version\(s\) wine_clf:1"):
        client.delete_run(run.id)
    client.delete_model_version("wine_clf", 1, force=True)
    client.delete_run(run.id)
