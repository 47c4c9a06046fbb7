"""The deep-learning examples end to end, as a user runs them (`gristmill run` in the
example's folder): they train at small sizes, log per-epoch metrics, and store every tensor
and model in its open format (no pickle warning). The second run is served from the cache."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.project import Project

EXAMPLES = Path(__file__).parents[2] / "examples"
pytestmark = pytest.mark.integration


def needs(*packages: str) -> pytest.MarkDecorator:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    # In CI the example runs anyway and fails: a missing extra is a failure there.
    return pytest.mark.skipif(
        bool(missing) and not os.environ.get("CI"), reason=f"not installed: {missing}"
    )


def run_example(name: str, target: str, tmp_path: Path) -> tuple[dict, dict[str, str]]:
    """The first run's JSON, and the materializer of each artifact it stored."""
    folder = tmp_path / name
    shutil.copytree(
        EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__")
    )
    command = [str(Path(sys.executable).with_name("gristmill")), "run", target, "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    first = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stderr
    assert "pickle" not in first.stderr.lower()
    second = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    assert {s["status"] for s in json.loads(second.stdout)["steps"]} == {"cached"}
    listed = subprocess.run(
        [*command[:1], "artifacts", "list", "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    materializers = {a["name"]: a["materializer"] for a in json.loads(listed.stdout)}
    return dict(json.loads(first.stdout)), materializers


@needs("torch", "safetensors", "sklearn")
def test_pytorch_mlp_example(tmp_path: Path, project: Project) -> None:
    run, materializers = run_example("pytorch_mlp", "pipeline:digits_mlp", tmp_path)
    assert materializers == {
        "train_set": "torch_tensors",
        "test_set": "torch_tensors",
        "state_dict": "torch_tensors",
        "metrics": "json",
    }
    metadata = run["metadata"]
    losses = [metadata[f"loss_epoch_{epoch}"] for epoch in range(1, 6)]
    assert losses == sorted(losses, reverse=True)  # it learns
    assert metadata["epoch"] == 5 and metadata["loss"] == losses[-1]
    assert metadata["test_accuracy"] > 0.85


@needs("tensorflow", "keras", "sklearn")
def test_keras_classifier_example(tmp_path: Path, project: Project) -> None:
    run, materializers = run_example("keras_classifier", "pipeline:wine_classifier", tmp_path)
    assert materializers["model"] == "keras"
    metadata = run["metadata"]
    assert metadata["epoch"] == 20 and "loss_epoch_20" in metadata
    assert metadata["loss_epoch_20"] < metadata["loss_epoch_1"]
    assert metadata["test_accuracy"] > 0.85
