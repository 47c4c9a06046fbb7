"""Step operators: routing (a step names the stack's operator; the orchestrator runs the
rest), the ``subprocess`` operator in another virtual environment than this one, and the
``spark`` operator whose Spark DataFrame a pandas step reads."""

import os
import site
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner

from fixtures import operated
from gristmill import Client, pipeline, step
from gristmill.cli.main import cli
from gristmill.errors import ConfigError
from gristmill.execution.environment import installed_packages
from gristmill.options import StepOptions
from gristmill.pipelines import RunFailedError
from gristmill.project import Project, find_project
from gristmill.steps import Step


def gm(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def on_stack(operator: str, flavor: str, *settings: str) -> None:
    gm("component", "register", "step_operator", operator, "--flavor", flavor, *settings)
    gm(
        "stack",
        "register",
        f"with-{operator}",
        "-o",
        "local",
        "-a",
        "local",
        "-s",
        operator,
        "--set",
    )


def other_venv(folder: Path) -> Path:
    """A virtual environment of its own (its interpreter, its prefix, one package this one
    lacks) that reaches this environment's packages through a ``.pth`` file: no network, no
    install, a second or so."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60
    )
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [f"import site; site.addsitedir({p!r})" for p in site.getsitepackages()]
    (Path(purelib) / "_main_env.pth").write_text("\n".join(lines) + "\n")
    marker = Path(purelib) / "only_in_other_venv-1.0.dist-info"
    marker.mkdir()
    (marker / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: only-in-other-venv\nVersion: 1.0\n"
    )
    return python


# --- the option and the routing -----------------------------------------------------------------


def test_step_operator_is_an_option_not_in_the_cache_key() -> None:
    assert operated.away.options.step_operator == "elsewhere"
    # Written as a free setting (YAML, older code): the same option.
    assert StepOptions(settings={"step_operator": "gpu", "seed": 1}) == StepOptions(
        settings={"seed": 1}, step_operator="gpu"
    )
    with pytest.raises(ValueError, match="step_operator must be the name"):
        StepOptions(step_operator="")  # type: ignore[arg-type]

    on_stack("elsewhere", "subprocess")
    first = operated.cacheable(n=4)
    assert first.steps["cached_away"].status == "completed"
    # The same step without an operator, on the default stack: the same computation, cached.
    gm("stack", "set", "default")
    options = replace(operated.cached_away.options, step_operator=None)
    plain = Step(operated.cached_away.func, name="cached_away", options=options)

    @pipeline(name="cacheable")
    def again(n: int = 3) -> None:
        plain(n)

    assert again(n=4).steps["cached_away"].status == "cached"


def test_a_step_naming_an_operator_the_stack_lacks_fails_at_the_start() -> None:
    with pytest.raises(ConfigError) as refused:
        operated.isolated(n=1)
    message = str(refused.value)
    assert "step 'away'" in message and "'elsewhere'" in message
    assert "-s elsewhere" in message and "no step operator" in message
    assert Client().list_runs() == []  # nothing was recorded


# --- subprocess ---------------------------------------------------------------------------------


def test_a_step_runs_in_another_venv_and_its_environment_record_shows_it(tmp_path: Path) -> None:
    python = other_venv(tmp_path / "other-venv")
    on_stack("elsewhere", "subprocess", f"python={python}")

    run = operated.isolated(n=5)
    assert run.status == "completed"
    result = run.steps["home"].output().load()
    away = result["away"]
    assert away["executable"] == str(python) != sys.executable
    assert Path(away["prefix"]).resolve() == (tmp_path / "other-venv").resolve()
    assert away["pid"] != os.getpid() and result["home_pid"] == os.getpid()  # the rest: here

    records = {r.name: r for r in find_project().store().get_step_runs(run.id)}
    recorded = records["away"].environment
    assert recorded["executable"] == str(python) and recorded["pid"] == away["pid"]
    assert records["away"].pid == away["pid"] and records["away"].heartbeat_at is not None
    here = installed_packages()
    assert recorded["packages"]["count"] == len(here) + 1  # its own package beside ours
    from gristmill._hashing import hash_text

    assert recorded["packages"]["hash"] != hash_text("\n".join(here))


def test_failures_on_the_subprocess_operator() -> None:
    on_stack("elsewhere", "subprocess")
    with pytest.raises(RunFailedError):
        operated.raising()
    run = Client().list_runs()[0]
    assert run.steps["breaks"].status == "failed"
    assert "broken on purpose" in (run.steps["breaks"].error or "")
    assert run.steps["home"].status == "stopped"

    with pytest.raises(RunFailedError):
        operated.dying()
    run = Client().list_runs()[0]
    assert run.steps["vanishes"].status == "failed"
    assert "exited with code 3" in (run.steps["vanishes"].error or "")


def test_a_bad_interpreter_is_refused_when_registered(tmp_path: Path) -> None:
    result = gm(
        "component",
        "register",
        "step_operator",
        "broken",
        "--flavor",
        "subprocess",
        f"python={tmp_path / 'nope'}",
        code=2,
    )
    assert "not an executable file" in result.output


# --- spark --------------------------------------------------------------------------------------


@pytest.fixture
def no_spark_session() -> Iterator[None]:
    """The operator keeps its session for the process; stop it after the test (memory)."""
    pytest.importorskip("pyspark")
    yield
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def test_a_spark_step_returns_a_spark_frame_a_pandas_step_reads(
    project: Project, no_spark_session: None
) -> None:
    import pandas as pd
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    on_stack(
        "spark",
        "spark",
        "master=local[1]",
        'config={"spark.ui.enabled": false, "spark.sql.shuffle.partitions": 2, '
        '"spark.ui.showConsoleProgress": false}',
    )

    @step(step_operator="spark")
    def prepare(rows: int = 30) -> Annotated[SparkDataFrame, "prepared"]:
        from pyspark.sql import functions as F

        spark = SparkSession.getActiveSession()
        assert spark is not None and spark.sparkContext.master == "local[1]"
        assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
        return spark.range(rows).withColumn("label", F.col("id") % 3).repartition(2)

    @step
    def count(prepared: pd.DataFrame) -> dict:
        assert isinstance(prepared, pd.DataFrame)  # read from Spark's Parquet, no session
        return {str(k): int(v) for k, v in prepared.groupby("label").size().items()}

    @pipeline
    def sparkling(rows: int = 30) -> None:
        count(prepare(rows=rows))

    run = sparkling(rows=30)
    assert run.status == "completed"
    assert run.steps["prepare"].outputs["prepared"].materializer == "spark"
    assert run.steps["count"].output().load() == {"0": 10, "1": 10, "2": 10}
    recorded = {r.name: r for r in find_project().store().get_step_runs(run.id)}
    spark_env = recorded["prepare"].environment["spark"]
    assert spark_env["master"] == "local[1]" and spark_env["app_id"]


def test_spark_refuses_another_master_than_the_running_session(no_spark_session: None) -> None:
    from pyspark.sql import SparkSession

    from gristmill.step_operators.spark import SparkStepOperator

    SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    assert SparkStepOperator().session().sparkContext.master == "local[1]"  # reused
    with pytest.raises(ConfigError, match="one per process"):
        SparkStepOperator(master="local[2]").session()
