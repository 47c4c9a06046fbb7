"""The quickstart example end to end, as `make quickstart` runs it: the first run trains and
evaluates a real scikit-learn model (stored as JSON: no pickle warning); the second is served
entirely from the cache."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.project import Project

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart"
pytestmark = pytest.mark.integration


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_quickstart_runs_then_is_cached(tmp_path: Path, project: Project) -> None:
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    first = gristmill("run", "pipeline:training", cwd=folder)
    assert first.returncode == 0, first.stderr
    for text in (
        "completed",
        "load_data",
        "evaluate",
        "accuracy",
        "f1_macro",
        "model:1",
        "DataFrame",
    ):
        assert text in first.stdout
    assert "pickle" not in (first.stdout + first.stderr).lower()  # the model is plain JSON

    second = gristmill("run", "pipeline:training", "--json", cwd=folder)
    assert second.returncode == 0, second.stderr
    run = json.loads(second.stdout)
    assert {s["status"] for s in run["steps"]} == {"cached"}
    assert run["metadata"]["accuracy"] > 0.9

    # the YAML form of the same pipeline shares every cache hit
    from_yaml = gristmill("run", "pipeline.yaml", "--json", cwd=folder)
    assert from_yaml.returncode == 0, from_yaml.stderr
    yaml_run = json.loads(from_yaml.stdout)
    assert {s["status"] for s in yaml_run["steps"]} == {"cached"}

    reproduced = gristmill("reproduce", run["id"], cwd=folder)
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "artifacts match byte for byte" in reproduced.stdout

    logs = gristmill("steps", "logs", "latest", "load_data", cwd=folder)
    assert "loaded 178 rows, 14 columns" in logs.stdout
    model = json.loads(gristmill("artifacts", "show", "model", "--json", cwd=folder).stdout)
    assert model["materializer"] != "cloudpickle" and model["data_type"] == "builtins.dict"
    rerun = gristmill("rerun", run["id"], "--from", "train", "--code", "current", cwd=folder)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr  # no PYTHONPATH needed
    lineage = gristmill("lineage", "metrics", cwd=folder)
    for name in ("model", "test_set", "train_set", "wine"):
        assert name in lineage.stdout
