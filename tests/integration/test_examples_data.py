"""The data examples end to end, as a user runs them (`gristmill run` in the example's
folder): Spark preparing data for scikit-learn, and Dask preprocessing. Their DataFrames are
stored as Parquet (never pickled), and a second run is served from the cache."""

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gristmill.project import Project

EXAMPLES = Path(__file__).parents[2] / "examples"
pytestmark = pytest.mark.integration


def need(module: str) -> None:
    """Skip where an extra is missing, except in CI (``CI`` set), where that fails."""
    if os.environ.get("CI"):
        importlib.import_module(module)
    else:
        pytest.importorskip(module)


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def run_example(name: str, pipeline: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / name
    shutil.copytree(
        EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__")
    )
    first = gristmill("run", f"pipeline:{pipeline}", "--json", cwd=folder)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "pickle" not in (first.stdout + first.stderr).lower()
    run = json.loads(first.stdout)
    assert run["status"] == "completed"
    second = gristmill("run", f"pipeline:{pipeline}", "--json", cwd=folder)
    assert second.returncode == 0, second.stdout + second.stderr
    assert {s["status"] for s in json.loads(second.stdout)["steps"]} == {"cached"}
    return folder, run


def artifact(name: str, folder: Path) -> dict[str, Any]:
    shown = gristmill("artifacts", "show", name, "--json", cwd=folder)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    result: dict[str, Any] = json.loads(shown.stdout)
    return result


def test_spark_prep_feeds_scikit_learn(tmp_path: Path, project: Project) -> None:
    need("pyspark")
    need("sklearn")
    folder, run = run_example("spark_prep", "spark_prep", tmp_path)
    assert run["metadata"]["accuracy"] > 0.85
    assert (
        run["metadata"]["rows_kept"] == run["metadata"]["train_rows"] + run["metadata"]["test_rows"]
    )
    features = artifact("features", folder)
    assert features["materializer"] == "spark"
    assert features["data_type"].startswith("pyspark.sql.")


def test_dask_preprocessing(tmp_path: Path, project: Project) -> None:
    need("dask.dataframe")
    folder, run = run_example("dask_preprocessing", "dask_preprocessing", tmp_path)
    assert run["metadata"]["partitions"] == 4
    assert 19_000 < run["metadata"]["rows"] < 20_000  # gaps and outliers dropped
    clean = artifact("clean", folder)
    assert clean["materializer"] == "dask"
    summary = artifact("summary", folder)
    assert summary["materializer"] == "pandas"
