"""Issue 12, ZenML compatibility: a project in the shape of ZenML's starter template
(tests/fixtures/zenml_starter, ZenML-style imports only) runs on ``gristmill.compat.zenml``;
and each adapter on its own (KeyError lookups, run_metadata, configuration translation,
log_metadata targets, the pipeline context)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Annotated

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")

from gristmill import Client as GristmillClient
from gristmill.compat import zenml
from gristmill.compat.zenml import (
    ArtifactConfig,
    Client,
    ExternalArtifact,
    Model,
    ModelStages,
    get_pipeline_context,
    get_step_context,
    log_metadata,
    pipeline,
    step,
    zenml_run_config,
)
from gristmill.errors import ConfigError, GristmillError, InvalidMetadataError
from gristmill.options import Resources, Retry

STARTER = Path(__file__).parents[1] / "fixtures" / "zenml_starter"
MODEL = "breast_cancer_classifier"


# -- the starter template ------------------------------------------------------------------------


def test_the_starter_project_imports_only_from_the_compat_module() -> None:
    for path in STARTER.rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import) (gristmill|zenml)\b", line):
                assert line.startswith("from gristmill.compat.zenml"), f"{path.name}: {line}"


def test_the_starter_template_runs_feature_engineering_training_promotion_inference() -> None:
    from fixtures.zenml_starter.run import main

    main(feature_pipeline=True)
    main(training_pipeline=True)
    main(inference_pipeline=True)

    client = Client()
    model = client.get_model(MODEL)
    assert (model.license, model.description) == ("Apache 2.0", "A breast cancer classifier")
    assert set(model.tags) == {"breast_cancer", "classifier"}
    sgd, rf = client.get_model_version(MODEL, "sgd"), client.get_model_version(MODEL, "rf")
    assert (sgd.number, rf.number) == (1, 2)  # named versions from the two configurations
    for version in (sgd, rf):
        assert 0.8 < version.run_metadata["test_accuracy"] <= 1.0
        assert version.run_metadata["train_accuracy"] > 0.8
        classifier = version.get_artifact("sklearn_classifier")
        assert classifier.run_metadata["test_accuracy"] == version.run_metadata["test_accuracy"]
        assert version.artifact_kinds()["sklearn_classifier"] == "model"
        assert version.run is not None and version.run.config["parameters"]["model_type"] == (
            version.version
        )
    assert type(sgd.load_artifact("sklearn_classifier")).__name__ == "SGDClassifier"
    assert type(rf.load_artifact("sklearn_classifier")).__name__ == "RandomForestClassifier"

    # promotion by accuracy: the better one is in production; the first run promoted sgd
    better, worse = sorted((sgd, rf), key=lambda v: -v.run_metadata["test_accuracy"])
    production = client.get_model_version(MODEL, ModelStages.PRODUCTION)
    assert production == better and production.stage == ModelStages.PRODUCTION
    assert worse.refresh().stage == ("archived" if worse is sgd else None)
    assert sgd.stage_history[0].stage == "production"

    # inference used the production version's model, and lineage reaches its training data
    run = client.get_run("latest")
    assert run.pipeline_name == "inference" and run.status == "completed"
    predict = run.steps["inference_predict"]
    used = predict.inputs["model"]
    assert used.id == production.get_artifact("sklearn_classifier").id
    predictions = predict.outputs["predictions"]
    assert predictions.metadata["model_version"] == production.version
    upstream = {a.id for a in client.upstream(predictions.id)}
    assert production.get_artifact("dataset_trn").id in upstream
    assert production.get_artifact("preprocess_pipeline").id in upstream
    assert len(predictions.load()) == 57


# -- Client: ZenML's lookups and errors ----------------------------------------------------------


@step
def produce(n: int = 3) -> Annotated[list[int], ArtifactConfig(name="numbers")]:
    log_metadata({"n": n}, infer_artifact=True)
    return list(range(n))


@pipeline(model=Model(name="numbers_model"))
def producing(n: int = 3) -> None:
    produce(n=n)


def test_client_lookups_raise_key_error_and_give_run_metadata() -> None:
    client = Client()
    with pytest.raises(KeyError):
        client.get_model_version("numbers_model", ModelStages.PRODUCTION)  # no model yet
    producing()
    producing(n=4)
    with pytest.raises(KeyError, match="production"):
        client.get_model_version("numbers_model", "production")  # no version in that stage
    with pytest.raises(KeyError):
        client.get_model("no_such_model")
    with pytest.raises(KeyError):
        client.get_artifact_version("no_such_artifact")
    latest = client.get_model_version("numbers_model")
    assert latest.number == 2 and latest.version == "2"
    assert client.get_artifact_version("numbers", "1").run_metadata["n"] == 3
    assert client.get_artifact_version("numbers").run_metadata["n"] == 4
    assert latest.get_artifact("numbers").load() == [0, 1, 2, 3]
    with pytest.raises(KeyError):
        latest.get_artifact("missing")
    latest.set_stage(ModelStages.STAGING)
    assert client.get_model_version("numbers_model", "staging") == latest
    client.get_model_version("numbers_model", 1).set_stage("staging", force=True)
    assert latest.refresh().stage == "archived"
    # everything else is gristmill's Client
    assert client.get_run("latest").pipeline_name == "producing"
    assert client.get_pipeline_run("latest").id == GristmillClient().get_run("latest").id


def test_model_is_a_handle_on_its_version_outside_a_pipeline() -> None:
    producing()
    model = Model(name="numbers_model", version=1)
    assert model.number == 1 and model.load_artifact("numbers") == [0, 1, 2]
    model.log_metadata({"owner": "me"})
    assert model.run_metadata == {"owner": "me"}
    assert model.get_artifact("absent") is None
    model.set_stage(ModelStages.PRODUCTION)
    assert Model(name="numbers_model", version="production").stage == "production"


# -- get_pipeline_context and ExternalArtifact --------------------------------------------------


@step
def total(values: list[int]) -> Annotated[int, "total"]:
    return sum(values)


@pipeline
def summing() -> None:
    total(get_pipeline_context().model.get_artifact("numbers"))


def test_pipeline_context_model_resolves_artifacts_of_the_configured_version() -> None:
    producing()
    producing(n=5)
    Client().get_model_version("numbers_model", 1).set_stage("production")
    configured = summing.with_options(model=Model(name="numbers_model", version="production"))
    run = configured()
    assert run.steps["total"].outputs["total"].load() == 3
    assert run.steps["total"].inputs["values"].version == 1
    with pytest.raises(GristmillError, match="outside a pipeline body"):
        get_pipeline_context()
    with pytest.raises(GristmillError, match="has no version"):
        summing.with_options(model=Model(name="numbers_model"))()


@pipeline
def by_reference(ref: str = "") -> None:
    total(ExternalArtifact(name="numbers", version="1"))


def test_external_artifact_takes_zenml_keywords() -> None:
    producing()
    producing(n=6)
    assert by_reference().steps["total"].outputs["total"].load() == 3
    with pytest.raises(GristmillError, match="value="):
        ExternalArtifact(value=[1, 2])


# -- log_metadata targets ------------------------------------------------------------------------


@step
def split() -> tuple[Annotated[list[int], "left"], Annotated[list[int], "right"]]:
    log_metadata({"side": "left"}, artifact_name="left", infer_artifact=True)
    log_metadata({"side": "right"}, artifact_name="right")  # its own output, by name
    log_metadata({"where": "step"})
    log_metadata({"quality": 0.9}, infer_model=True)
    return [1], [2]


@step
def ambiguous() -> tuple[Annotated[int, "a"], Annotated[int, "b"]]:
    log_metadata({"x": 1}, infer_artifact=True)
    return 1, 2


@pipeline(model=Model(name="split_model"))
def splitting() -> None:
    split()


def test_log_metadata_reaches_each_zenml_target() -> None:
    run = splitting()
    client = Client()
    outputs = run.steps["split"].outputs
    assert outputs["left"].metadata["side"] == "left"
    assert outputs["right"].metadata["side"] == "right"
    assert run.steps["split"].metadata["where"] == "step"
    assert client.get_model_version("split_model").run_metadata == {"quality": 0.9}
    # outside a step, by name and version, by id, on a model, on a run and a step run
    log_metadata({"checked": True}, artifact_name="left", artifact_version="1")
    log_metadata({"by_id": True}, artifact_version_id=outputs["right"].id)
    log_metadata({"owner": "team"}, model_name="split_model", model_version=ModelStages.LATEST)
    log_metadata({"reviewed": True}, run_id_name_or_prefix=run.id)
    log_metadata({"slow": False}, step_name="split", run_id_name_or_prefix=run.name)
    assert client.get_artifact_version("left", 1).run_metadata["checked"] is True
    assert client.get_artifact_version("right").run_metadata["by_id"] is True
    assert client.get_model_version("split_model").run_metadata["owner"] == "team"
    refreshed = client.get_run(run.id)
    assert refreshed.metadata["reviewed"] is True
    assert refreshed.steps["split"].metadata["slow"] is False
    with pytest.raises(InvalidMetadataError, match="outside a step"):
        log_metadata({"x": 1}, infer_artifact=True)
    with pytest.raises(GristmillError, match="model_version_id"):
        log_metadata({"x": 1}, model_version_id="abc")


@pipeline
def ambiguous_pipeline() -> None:
    ambiguous()


def test_log_metadata_infer_artifact_needs_a_name_with_several_outputs() -> None:
    with pytest.raises(GristmillError, match="choose one with artifact_name"):
        ambiguous_pipeline()


@step
def show_context() -> Annotated[str, "seen"]:
    context = get_step_context()
    assert context.model_version == context.model
    assert context.pipeline_run.id == context.run_id
    assert context.step_run.name == "show_context"
    return f"{context.model.name}:{context.model.version}:{context.step_name}"


@pipeline(model=Model(name="context_model", version="named"))
def context_pipeline() -> None:
    show_context()


def test_step_context_gives_the_model_version_and_the_run() -> None:
    run = context_pipeline()
    assert run.steps["show_context"].outputs["seen"].load() == "context_model:named:show_context"


# -- decorators and configuration ----------------------------------------------------------------


def test_step_options_take_zenml_names() -> None:
    @step(
        enable_cache=False,
        enable_step_logs=False,
        experiment_tracker="mlflow_tracker",
        retry={"max_retries": 2, "delay": 1, "backoff": 2},
    )
    def configured() -> int:
        return 1

    options = configured.options
    assert (options.cache, options.enable_logs) == (False, False)
    assert options.retries == Retry(count=2, delay=1.0, backoff=2.0)
    assert options.experiment_tracker == "mlflow_tracker"
    assert options.settings == {}
    assert configured() == 1  # outside a pipeline, the plain function
    with pytest.raises(GristmillError, match="output_materializers"):
        step(output_materializers={})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_zenml_configuration_translates_to_a_run_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        enable_cache: false
        run_name: nightly_{date}
        enable_artifact_metadata: true
        settings:
          docker: {required_integrations: [sklearn]}
        model:
          name: clf
          version: rf
          license: Apache 2.0
          tags: [a, b]
          save_models_to_registry: true
        parameters: {model_type: rf}
        steps:
          trainer:
            enable_cache: false
            enable_step_logs: false
            experiment_tracker: tracker
            step_operator: gpu
            retry: {max_retries: 3}
            parameters: {depth: 4}
            settings: {resources: {cpu_count: 2}}
        """,
    )
    config = zenml.load_zenml_config(path)
    assert config.enable_cache is False and config.run_name == "nightly_{date}"
    assert config.parameters == {"model_type": "rf"}
    assert config.settings == {"docker": {"required_integrations": ["sklearn"]}}
    assert config.model is not None
    assert (config.model.name, config.model.version, config.model.license) == (
        "clf",
        "rf",
        "Apache 2.0",
    )
    trainer = config.steps["trainer"]
    assert (trainer.cache, trainer.enable_logs, trainer.parameters) == (False, False, {"depth": 4})
    assert trainer.retries == Retry(count=3)
    assert trainer.experiment_tracker == "tracker"
    assert trainer.settings == {}
    assert trainer.step_operator == "gpu"
    assert trainer.resources == Resources(cpu=2)  # ZenML's cpu_count, as the resources option
    older = zenml_run_config({"model_version": {"name": "clf", "version": "production"}})
    assert older.model is not None and older.model.version == "production"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedule: {cron_expression: '* * * * *'}", r"config.yaml:1:1: ZenML's 'schedule'"),
        ("paramters: {a: 1}", "unknown option 'paramters' — did you mean 'parameters'"),
        ("model: {name: m, model_version_id: x}", "'model_version_id' is not supported"),
        ("steps: {s: {outputs: {}}}", "'outputs' is not supported"),
        ("steps: {s: {retry: {tries: 2}}}", "unknown retry option"),
        ("model: {name: m}\nmodel_version: {name: m}", "either model: or model_version:"),
        ("parameters: 3", "parameters"),
    ],
)
def test_unsupported_zenml_configuration_is_a_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        zenml.load_zenml_config(_write(tmp_path, text + "\n"))


def test_with_options_config_path_and_unsupported_options(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: {name: numbers_model, version: first}\nparameters: {n: 2}\n")
    configured = producing.with_options(config_path=path, run_name="from_zenml_config")
    run = configured()
    assert run.name == "from_zenml_config"
    assert Client().get_model_version("numbers_model", "first").load_artifact("numbers") == [0, 1]
    with pytest.raises(GristmillError, match="schedule"):
        producing.with_options(schedule=object())


def test_submodules_and_names_match_zenml_import_lines() -> None:
    from gristmill.compat.zenml.client import Client as SubmoduleClient
    from gristmill.compat.zenml.enums import ModelStages as SubmoduleStages
    from gristmill.compat.zenml.logger import get_logger

    assert SubmoduleClient is Client and SubmoduleStages is ModelStages
    assert get_logger("x").name == "x"
    assert ModelStages.PRODUCTION == "production" and str(ModelStages.LATEST) == "latest"
    assert sorted(zenml.__all__) == zenml.__all__
    assert isinstance(Model(name="m", version=ModelStages.STAGING).version, str)
