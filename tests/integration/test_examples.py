"""The examples under examples/ run end to end, as a newcomer would run them, at small sizes.
One test function per example (others add theirs beside this one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
pytestmark = pytest.mark.integration


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def copy_example(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(
        EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__")
    )
    return folder


def test_example_xgboost(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    pytest.importorskip("sklearn")
    folder = copy_example("xgboost_tabular", tmp_path)
    result = gristmill("run", "pipeline:training", "-p", "n_estimators=20", "--json", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pickle" not in result.stderr.lower()
    run = json.loads(result.stdout)
    assert run["status"] == "completed"
    assert [s["name"] for s in run["steps"]] == ["load_data", "split", "train", "evaluate"]
    assert run["metadata"]["accuracy"] > 0.9
    model = json.loads(gristmill("artifacts", "show", "model", "--json", cwd=folder).stdout)
    assert model["materializer"] == "xgboost"
    assert model["data_type"] == "xgboost.sklearn.XGBClassifier"
    fields = model["metadata"]["visualization"]["fields"]
    assert fields["n_features"] == 30 and fields["parameters"]["n_estimators"] == 20
