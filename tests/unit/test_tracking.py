"""Metric series, experiments and run comparison: through real pipeline runs, the Client
(pandas) and the CLI."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner

from gristmill import Client, log_metric, log_metrics, pipeline, step
from gristmill.cli.main import cli
from gristmill.errors import ConfigError, InvalidMetadataError, NotFoundError, RunFailedError
from gristmill.project import Project


@step
def fit(epochs: int = 100, lr: float = 0.1) -> Annotated[float, "final_loss"]:
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        log_metrics({"loss": loss, "accuracy": 1 - loss}, step=epoch)
    log_metric("lr_used", lr)
    return loss


@pipeline
def training(epochs: int = 100, lr: float = 0.1) -> None:
    fit(epochs=epochs, lr=lr)


# -- series --------------------------------------------------------------------------------------


def test_a_step_records_series_and_their_last_values() -> None:
    run = training()
    history = run.metric_history("loss")  # pandas is installed in the test environment
    assert list(history.columns) == ["step", "value", "time"]
    assert list(history["step"]) == list(range(100))
    assert history["value"].iloc[0] == pytest.approx(0.9)
    assert history["value"].iloc[-1] == pytest.approx(0.9**100)
    assert history["time"].is_monotonic_increasing
    # the last value of each series is the run's and the step run's metadata, as before
    assert run.metadata["loss"] == pytest.approx(0.9**100)
    assert run.steps["fit"].metadata["accuracy"] == pytest.approx(1 - 0.9**100)
    assert run.metrics == {
        "loss": pytest.approx(0.9**100),
        "accuracy": pytest.approx(1 - 0.9**100),
        "lr_used": 0.1,
    }
    client = Client()
    assert len(client.metric_history(run.name, "accuracy")) == 100
    assert client.store.metric_names([run.id]) == {run.id: ["accuracy", "loss", "lr_used"]}
    with pytest.raises(NotFoundError, match="did you mean 'loss'"):
        run.metric_history("los")


def test_steps_are_numbered_per_name_and_kept_as_floats() -> None:
    @step
    def counting() -> None:
        log_metric("a", 1)
        log_metric("a", 2)
        log_metric("b", 5, step=10)
        log_metric("b", 6)  # after the highest step given
        log_metric("nan", math.nan)
        log_metric("inf", math.inf)

    @pipeline
    def numbered() -> None:
        counting()

    run = numbered()
    store = Client().store
    assert [(p.step, p.value) for p in store.metric_history(run.id, "a")] == [(0, 1.0), (1, 2.0)]
    assert [(p.step, p.value) for p in store.metric_history(run.id, "b")] == [
        (10, 5.0),
        (11, 6.0),
    ]
    assert math.isnan(store.metric_history(run.id, "nan")[0].value)
    assert store.metric_history(run.id, "inf")[0].value == math.inf


def test_bad_points_fail_at_the_call() -> None:
    for call, message in (
        (lambda: log_metric("", 1.0, run="x"), "non-empty"),
        (lambda: log_metric("loss", "low", run="x"), "not a number"),
        (lambda: log_metric("loss", 1.0, step=1.5, run="x"), "whole number"),
        (lambda: log_metric("loss", 1.0, step=2**40, run="x"), "2\\*\\*31"),
        (lambda: log_metric("loss", 1.0), "needs the run"),
    ):
        with pytest.raises(InvalidMetadataError, match=message):
            call()


def test_outside_a_step_points_go_to_the_named_run() -> None:
    run = training(epochs=2)
    log_metric("eval_loss", 0.5, run=run.name)
    log_metrics({"eval_loss": 0.25, "eval_acc": 0.9}, run=run.id)
    points = Client().store.metric_history(run.id, "eval_loss")
    assert [(p.step, p.value, p.step_run_id) for p in points] == [(0, 0.5, None), (1, 0.25, None)]
    assert run.refresh().metrics["eval_loss"] == 0.25
    with pytest.raises(NotFoundError):
        log_metric("x", 1.0, run="no-such-run")


def test_a_failing_step_keeps_its_points() -> None:
    @step
    def diverging() -> float:
        for epoch in range(5):
            log_metric("loss", float(epoch))
        raise FloatingPointError("loss diverged")

    @pipeline
    def unstable() -> None:
        diverging()

    with pytest.raises(RunFailedError) as caught:
        unstable()
    run = caught.value.run
    assert run is not None
    assert list(run.metric_history("loss")["value"]) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert run.steps["diverging"].status == "failed"
    assert run.steps["diverging"].metadata["loss"] == 4.0


def test_many_points_are_one_batched_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill.store.sql import metrics as sql_metrics

    statements: list[int] = []
    real = sql_metrics.execute

    def counting(conn: Any, prepared: Any, values: Any) -> Any:
        if prepared is sql_metrics._Q.insert_points:
            statements.append(len(values))
        return real(conn, prepared, values)

    monkeypatch.setattr(sql_metrics, "execute", counting)

    @step
    def chatty() -> None:
        for i in range(10_000):
            log_metric("loss", 1 / (i + 1))

    @step
    def quiet() -> int:
        return 1

    @pipeline
    def logging_a_lot() -> None:
        chatty()
        quiet()

    run = logging_a_lot()
    assert statements == [10_000]  # and nothing for the step that logged no metric
    assert len(run.metric_history("loss")) == 10_000


def test_a_cached_step_shows_the_series_it_reused() -> None:
    first = training(epochs=3)
    again = training(epochs=3)
    assert again.steps["fit"].status == "cached"
    assert list(again.metric_history("loss")["step"]) == [0, 1, 2]
    assert again.metrics["loss"] == first.metrics["loss"]


def test_deleting_a_run_deletes_its_points() -> None:
    run = training(epochs=3)
    client = Client()
    client.delete_run(run.id)
    assert client.store.metric_names([run.id]) == {run.id: []}


# -- experiments ---------------------------------------------------------------------------------


def test_experiments_default_decorator_options_and_config(tmp_path: Path) -> None:
    @pipeline(experiment="tuning")
    def tuned() -> None:
        fit(epochs=1)

    default = training(epochs=1)
    decorated = tuned()
    optioned = training.with_options(experiment="ablation")(epochs=1)
    config = tmp_path / "run.yaml"
    config.write_text("experiment: from-file\nparameters: {epochs: 2}\n")
    configured = training.with_options(config=config)()
    assert [r.experiment for r in (default, decorated, optioned, configured)] == [
        "training",
        "tuning",
        "ablation",
        "from-file",
    ]
    client = Client()
    assert [r.id for r in client.list_runs(experiment="ablation")] == [optioned.id]
    assert client.count_runs(experiment="training") == 1
    experiments = client.list_experiments()
    assert [e.name for e in experiments] == ["from-file", "ablation", "tuning", "training"]
    assert all(e.run_count == 1 for e in experiments)
    assert client.get_run(configured.id).config.get("experiment") == "from-file"
    with pytest.raises(ConfigError, match="experiment must be a name"):
        training.with_options(experiment="")


# -- comparison ----------------------------------------------------------------------------------


def test_compare_runs_from_the_client() -> None:
    slow = training(lr=0.01, epochs=10)
    fast = training(lr=0.5, epochs=10)
    client = Client()
    frame = client.compare_runs([slow.name, fast.id], sort="-accuracy")
    assert list(frame["run"]) == [fast.name, slow.name]
    assert list(frame.columns[:6]) == ["run", "id", "experiment", "status", "duration", "tags"]
    assert list(frame["params.lr"]) == [0.5, 0.01]
    assert frame["metrics.accuracy"].iloc[0] == pytest.approx(1 - 0.5**10)
    only = client.compare_runs([slow, fast], metrics=["loss"], sort="lr")
    assert [c for c in only.columns if c.startswith("metrics.")] == ["metrics.loss"]
    assert list(only["run"]) == [slow.name, fast.name]
    latest = client.compare_runs(experiment="training", last=1)
    assert list(latest["run"]) == [fast.name]
    with pytest.raises(NotFoundError, match="did you mean 'accuracy'"):
        client.compare_runs([slow.id], metrics=["acuracy"])
    with pytest.raises(NotFoundError, match="cannot sort by 'speed'"):
        client.compare_runs([slow.id], sort="speed")
    with pytest.raises(NotFoundError, match="no runs in experiment"):
        client.compare_runs(experiment="nope")


def test_without_pandas_the_client_returns_plain_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    run = training(epochs=2)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pandas" else real(name, *a)
    )
    rows = Client().compare_runs([run.id])
    assert isinstance(rows, list) and rows[0]["run"] == run.name
    history = Client().metric_history(run.id, "loss")
    assert [p["step"] for p in history] == [0, 1]


# -- the CLI -------------------------------------------------------------------------------------

QUICKSTART_LIKE = """
from typing import Annotated
from gristmill import step, pipeline, log_metadata, log_metric

@step
def load(n: int = 50) -> list:
    return list(range(n))

@step
def train(data: list, C: float = 1.0, seed: int = 42) -> Annotated[dict, "model"]:
    for epoch in range(5):
        log_metric("loss", 1.0 / (epoch + 1 + C))
    log_metadata({"train_accuracy": min(1.0, 0.8 + C / 10)})
    return {"C": C}

@step
def evaluate(model: dict) -> Annotated[dict, "metrics"]:
    metrics = {"accuracy": min(1.0, 0.85 + model["C"] / 20), "f1_macro": 0.8}
    log_metadata(metrics)
    return metrics

@pipeline
def wine(C: float = 1.0, seed: int = 42):
    evaluate(train(load(), C=C, seed=seed))
"""


@pytest.fixture
def runner(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    (project.root / "quick_mod.py").write_text(QUICKSTART_LIKE)
    monkeypatch.chdir(project.root)
    sys.modules.pop("quick_mod", None)
    yield CliRunner()
    sys.modules.pop("quick_mod", None)


def invoke(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_runs_compare_of_two_quickstart_like_runs_prints_a_readable_table(
    runner: CliRunner,
) -> None:
    invoke(runner, "run", "quick_mod:wine", "--run-name", "wine-a")
    invoke(runner, "run", "quick_mod:wine", "-p", "C=2", "--run-name", "wine-b", "--tag", "x")
    result = invoke(runner, "runs", "compare", "wine-a", "wine-b", "--sort", "-accuracy")
    lines = result.output.splitlines()
    header = next(line for line in lines if "run" in line and "status" in line)
    for column in ("duration", "C", "seed", "loss", "train_accuracy", "accuracy", "f1_macro"):
        assert column in header
    rows = [line for line in lines if "wine-" in line]
    assert [r.split()[1] for r in rows] == ["wine-b", "wine-a"]  # highest accuracy first
    assert "0.95" in rows[0] and "0.9" in rows[1] and "completed" in rows[0]
    assert "parameters: C, seed" in result.output

    data = json.loads(invoke(runner, "runs", "compare", "wine-a", "wine-b", "--json").output)
    assert [(r["run"], r["params.C"], r["metrics.accuracy"]) for r in data] == [
        ("wine-a", 1.0, 0.9),
        ("wine-b", 2.0, 0.95),
    ]
    assert data[1]["tags"] == ["x"]

    text = invoke(
        runner, "runs", "compare", "wine-a", "wine-b", "--metric", "loss", "--sort", "C", "--csv"
    ).output
    table = list(csv.DictReader(io.StringIO(text)))
    assert [row["run"] for row in table] == ["wine-a", "wine-b"]
    assert [k for k in table[0] if k.startswith("metrics.")] == ["metrics.loss"]
    assert float(table[1]["metrics.loss"]) == pytest.approx(1 / 7)


def test_experiments_from_the_cli(runner: CliRunner) -> None:
    invoke(runner, "run", "quick_mod:wine", "--run-name", "base")
    for c in ("0.5", "3"):
        invoke(runner, "run", "quick_mod:wine", "-p", f"C={c}", "--experiment", "sweep")
    listed = json.loads(invoke(runner, "runs", "list", "--experiment", "sweep", "--json").output)
    assert len(listed) == 2 and {r["experiment"] for r in listed} == {"sweep"}
    experiments = json.loads(invoke(runner, "experiments", "list", "--json").output)
    assert [(e["name"], e["runs"]) for e in experiments] == [("sweep", 2), ("wine", 1)]
    assert "sweep" in invoke(runner, "experiments", "list").output
    assert "sweep" in invoke(runner, "experiment", "list").output  # the other number
    data = json.loads(
        invoke(runner, "runs", "compare", "--experiment", "sweep", "--last", "1", "--json").output
    )
    assert [r["params.C"] for r in data] == [3.0]
    missing = runner.invoke(cli, ["runs", "compare"])
    assert missing.exit_code != 0 and "--experiment" in missing.output


def test_compare_escapes_what_the_store_holds(runner: CliRunner) -> None:
    @step
    def odd() -> None:
        log_metric("[bold]x[/bold]", 1.0)

    @pipeline
    def odd_names() -> None:
        odd()

    run = odd_names()
    output = invoke(runner, "runs", "compare", run.id).output
    assert "[bold]x[/bold]" in output
