"""Issue 12's example (examples/zenml_style) run as a user runs it, with the CLI: feature
engineering, training with two configuration files, promotion by accuracy, inference with
the production model; then the registry and the lineage read back through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "zenml_style"
pytestmark = pytest.mark.integration


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"gristmill {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def as_json(*args: str, cwd: Path) -> Any:
    return json.loads(gristmill(*args, "--json", cwd=cwd).stdout)


def test_zenml_style_example_trains_two_versions_promotes_one_and_infers_with_it(
    tmp_path: Path,
) -> None:
    pytest.importorskip("sklearn")
    folder = tmp_path / "zenml_style"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    gristmill(
        "run",
        "pipelines:feature_engineering",
        "-c",
        "configs/feature_engineering.yaml",
        "-p",
        "rows=120",
        cwd=folder,
    )
    gristmill("run", "pipelines:training", "-c", "configs/training_logistic.yaml", cwd=folder)
    gristmill("run", "pipelines:training", "-c", "configs/training_forest.yaml", cwd=folder)
    inference = as_json("run", "pipelines:inference", "-c", "configs/inference.yaml", cwd=folder)
    assert inference["status"] == "completed"

    versions = as_json("models", "versions", "wine_classifier", cwd=folder)
    assert sorted((v["number"], v["version"]) for v in versions) == [(1, "logistic"), (2, "forest")]
    assert all(0.5 < v["metadata"]["accuracy"] <= 1.0 for v in versions)
    in_production = [v for v in versions if v["stage"] == "production"]
    assert len(in_production) == 1
    production = in_production[0]
    assert production["metadata"]["accuracy"] == max(v["metadata"]["accuracy"] for v in versions)

    # lineage of the predictions: the production version's classifier, then its training data
    classifier = next(a for a in production["artifacts"] if a["name"] == "classifier")
    graph = as_json("lineage", "predictions", cwd=folder)
    upstream = graph["artifact_versions"]
    assert classifier["id"] in upstream
    training_run = as_json("runs", "show", production["run_id"], cwd=folder)
    train_step = next(s for s in training_run["steps"] if s["name"] == "train")
    assert train_step["inputs"]["train_set"] in upstream  # the id of the data it was trained on
    assert {v["name"] for v in upstream.values()} >= {"predictions", "classifier", "train_set"}
    assert "raw_wines" in {v["name"] for v in upstream.values()}
