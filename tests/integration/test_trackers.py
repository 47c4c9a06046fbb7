"""Experiment trackers from a real pipeline run on a stack with the tracker component: MLflow
read back with MlflowClient from a local sqlite store and from a real `mlflow server` on
loopback; W&B in offline mode, read back from the run's transaction log with wandb's own
protobuf records."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner

from gristmill import ArtifactConfig, Model, log_metadata, log_metric, log_metrics, pipeline, step
from gristmill.cli.main import cli
from gristmill.errors import ConfigError
from gristmill.project import Project
from gristmill.testing.services import free_port, wait_for_port

pytestmark = pytest.mark.integration
pytest.importorskip("mlflow")
pytest.importorskip("sklearn")


@step(experiment_tracker="trk")
def train(
    epochs: int = 3, lr: float = 0.1
) -> Annotated[Any, ArtifactConfig(name="clf", is_model_artifact=True)]:
    from sklearn.linear_model import LogisticRegression

    for _ in range(epochs):
        log_metric("loss", round(1.0 / (_ + 1), 3))  # steps 0, 1, 2
    log_metrics({"acc": 0.5, "f1": 0.25}, step=7)
    log_metadata({"rows": 4, "note": "tiny"})
    return LogisticRegression(C=lr).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


@pipeline(model=Model(name="tiny-clf"))
def training(lr: float = 0.1) -> None:
    train(lr=lr)


@step(settings={"experiment_tracker": "elsewhere"})
def orphan() -> int:
    return 1


@pipeline
def untracked() -> None:
    orphan()


def _cli(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _stack_with(tracker_flavor: str, *settings: str) -> None:
    _cli(
        "component", "register", "experiment_tracker", "trk", "--flavor", tracker_flavor, *settings
    )
    _cli("stack", "register", "tracked", "-o", "local", "-a", "local", "-e", "trk")
    _cli("stack", "set", "tracked")


@pytest.fixture
def in_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(project.root)
    return project


def _check_mlflow(tracking_uri: str, run: Any) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    step_run = run.steps["train"]
    meta = step_run.metadata
    run_id = meta["mlflow_run_id"]
    assert meta["experiment_tracker"] == "trk"
    mlrun = client.get_run(run_id)
    tags = mlrun.data.tags
    assert tags["gristmill.run_id"] == run.id
    assert tags["gristmill.step"] == "train"
    assert tags["gristmill.step_run_id"] == step_run.id
    assert mlrun.info.status == "FINISHED"
    params = mlrun.data.params
    assert params["lr"] == "0.5" and params["epochs"] == "3"
    assert params["pipeline.lr"] == "0.5"
    assert params["note"] == "tiny"
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")]
    assert sorted(history) == [(0, 1.0), (1, 0.5), (2, 0.333)]
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "acc")] == [(7, 0.5)]
    assert mlrun.data.metrics["rows"] == 4.0
    # The model output, registered under the gristmill model's name.
    version = client.get_model_version("tiny-clf", str(meta["mlflow_model_version"]))
    assert version.run_id == run_id
    model_version = run.model_version if hasattr(run, "model_version") else None
    del model_version
    loaded = mlflow.sklearn.load_model(f"models:/tiny-clf/{version.version}")
    assert loaded.predict([[3.0]]).tolist() == [1]


def test_mlflow_local_store(in_project: Project, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _stack_with("mlflow", f"tracking_uri={uri}", "register_models=true", "autolog=false")
    run = training(lr=0.5)
    _check_mlflow(uri, run)
    import mlflow

    experiment = mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("training")
    assert experiment is not None  # the gristmill experiment by default


def test_mlflow_nested_with_autolog(in_project: Project, tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _stack_with("mlflow", f"tracking_uri={uri}", "experiment=exp", "nested=true")
    run = training(lr=0.5)
    client = mlflow.MlflowClient(tracking_uri=uri)
    mlrun = client.get_run(run.steps["train"].metadata["mlflow_run_id"])
    parent = client.get_run(mlrun.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["gristmill.run_id"] == run.id
    assert parent.info.experiment_id == mlrun.info.experiment_id
    # autologging (on by default) logged the estimator's own params into the step's run
    assert mlrun.data.params.get("C") == "0.5"


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--default-artifact-root",
        str(tmp_path / "server-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for_port(port, timeout=120, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def test_mlflow_server(in_project: Project, mlflow_server: str) -> None:
    _stack_with("mlflow", f"tracking_uri={mlflow_server}", "register_models=true", "autolog=false")
    run = training(lr=0.5)
    meta = run.steps["train"].metadata
    assert meta["mlflow_run_url"].startswith(mlflow_server + "/#/experiments/")
    _check_mlflow(mlflow_server, run)


def test_tracker_not_in_the_stack(in_project: Project, tmp_path: Path) -> None:
    _stack_with("mlflow", f"tracking_uri=sqlite:///{tmp_path / 'm.db'}")
    with pytest.raises(
        ConfigError, match=r"step 'orphan' uses experiment tracker 'elsewhere'.*-e elsewhere"
    ):
        untracked()


# -- W&B ---------------------------------------------------------------------------------------


def read_wandb_records(path: Path) -> Iterator[Any]:
    """The records of a W&B transaction log (``run-ID.wandb``): a 7-byte file header, then
    32 KiB blocks of chunks, each with a 7-byte header (checksum, length, type: full, first,
    middle, last) around a serialized ``wandb.proto`` Record."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    block, position, pending = 32 * 1024, 7, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _key(item: Any) -> str:
    """An item's key: ``key``, or ``nested_key`` parts (newer W&B versions)."""
    return str(item.key) if item.key else ".".join(item.nested_key)


def test_wandb_offline(
    in_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    import json

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _stack_with("wandb", "project=gm-test", "mode=offline", f"directory={tmp_path}")
    run = training(lr=0.5)
    meta = run.steps["train"].metadata
    assert meta["experiment_tracker"] == "trk"
    files = list(Path(meta["wandb_run_dir"]).glob("*.wandb"))
    assert len(files) == 1
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    run_record = None
    for record in read_wandb_records(files[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_record = record.run
            for item in record.run.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
    assert run_record is not None and run_record.run_id == meta["wandb_run_id"]
    assert run_record.run_group == run.name and run_record.project == "gm-test"
    assert config["gristmill"]["run_id"] == run.id
    assert config["gristmill"]["step_run_id"] == run.steps["train"].id
    assert config["lr"] == 0.5 and config["epochs"] == 3 and config["pipeline.lr"] == 0.5
    assert config["note"] == "tiny"
    loss = [(row["gristmill_step"], row["loss"]) for row in history if "loss" in row]
    assert loss == [(0, 1.0), (1, 0.5), (2, 0.333)]
    assert [(r["gristmill_step"], r["acc"]) for r in history if "acc" in r] == [(7, 0.5)]
    assert [(r["gristmill_step"], r["f1"]) for r in history if "f1" in r] == [(7, 0.25)]
    assert summary.get("rows") == 4
