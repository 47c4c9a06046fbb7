"""The `gristmill` command: exit codes, tables, --json for scripts, errors that say the fix."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gristmill.cli.main import cli
from gristmill.project import Project

PIPELINE_MODULE = """
from typing import Annotated
from gristmill import step, pipeline, log_metadata

@step
def make(n: int = 3) -> list:
    print("making", n)
    return list(range(n))

@step
def score(xs: list, name: str = "x") -> Annotated[float, "score"]:
    log_metadata({"accuracy": 0.75})
    return float(sum(xs))

@step
def explode(x: float) -> float:
    raise ValueError("exploded")

@pipeline
def demo(n: int = 3, name: str = "x"):
    score(make(n), name=name)

@pipeline
def broken():
    explode(score(make()))

not_a_pipeline = 3
"""


@pytest.fixture
def runner(project: Project, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    (project.root / "demo_mod.py").write_text(PIPELINE_MODULE)
    monkeypatch.chdir(project.root)
    sys.modules.pop("demo_mod", None)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_run_then_inspect(runner: CliRunner) -> None:
    result = invoke(runner, "run", "demo_mod:demo", "-p", "n=4", "-p", "name=123")
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "accuracy" in result.output
    listing = json.loads(invoke(runner, "runs", "list", "--json").output)
    assert len(listing) == 1 and listing[0]["status"] == "completed"
    assert listing[0]["parameters"] == {"n": 4, "name": "123"}  # str parameters stay strings
    run_id = listing[0]["id"]
    shown = json.loads(invoke(runner, "runs", "show", run_id[:8], "--json").output)
    assert [s["name"] for s in shown["steps"]] == ["make", "score"]
    assert shown["metadata"] == {"accuracy": 0.75}
    table = invoke(runner, "runs", "show", "latest", "--config")
    assert "score:1" in table.output and "Configuration" in table.output
    logs = invoke(runner, "steps", "logs", "latest", "make")
    assert logs.output == "making 4\n"
    artifacts = json.loads(invoke(runner, "artifacts", "list", "--json").output)
    assert {a["name"] for a in artifacts} == {"score", "demo.make.output"}
    shown_artifact = json.loads(invoke(runner, "artifacts", "show", "score", "--json").output)
    assert shown_artifact["producer"]["name"] == "score"
    assert invoke(runner, "artifacts", "load", "score:1").output == "6.0\n"
    lineage = json.loads(invoke(runner, "lineage", "score", "--json").output)
    assert len(lineage["edges"]) == 1
    tree = invoke(runner, "lineage", "demo.make.output", "--downstream")
    assert "read by step score" in tree.output
    pipelines = json.loads(invoke(runner, "pipeline", "list", "--json").output)
    assert pipelines == [
        {
            "name": "demo",
            "versions": 1,
            "runs": 1,
            "latest_spec_hash": pipelines[0]["latest_spec_hash"],
        }
    ]


def test_second_run_is_all_cached(runner: CliRunner) -> None:
    invoke(runner, "run", "demo_mod:demo")
    result = json.loads(invoke(runner, "run", "demo_mod:demo", "--json").stdout)
    assert {s["status"] for s in result["steps"]} == {"cached"}
    assert result["metadata"] == {"accuracy": 0.75}
    again = json.loads(invoke(runner, "run", "demo_mod:demo", "--no-cache", "--json").stdout)
    assert {s["status"] for s in again["steps"]} == {"completed"}


def test_artifacts_load_to_a_file(runner: CliRunner, tmp_path: Path) -> None:
    invoke(runner, "run", "demo_mod:demo")
    target = tmp_path / "out" / "score.json"
    result = invoke(runner, "artifacts", "load", "score", "--to", str(target))
    assert result.exit_code == 0
    assert json.loads(target.read_text()) == 3.0


def test_failed_run_exits_1_and_shows_the_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["run", "demo_mod:broken"])
    assert result.exit_code == 1
    assert "ValueError: exploded" in result.output
    data = json.loads(runner.invoke(cli, ["runs", "list", "--json", "--status", "failed"]).output)
    assert len(data) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "demo_mod:demoo"], 2, "'demoo' does not exist — did you mean 'demo'"),
        (["run", "demo_mod:not_a_pipeline"], 2, "is not a @pipeline"),
        (["run", "nosuchmodule:demo"], 2, "cannot import module 'nosuchmodule'"),
        (["run", "demo_mod"], 2, "not a pipeline reference"),
        (["run", "demo_mod:demo", "-p", "m=3"], 2, "has no parameter 'm' (valid: 'n', 'name')"),
        (["run", "demo_mod:demo", "-p", "n"], 2, "expected KEY=VALUE"),
        (["run", "demo_mod:demo", "-p", "n=abc"], 2, "must be int, got 'abc'"),
        (["runs", "show", "nope-run"], 1, "no run with id or name 'nope-run'"),
        (["artifacts", "show", "nope"], 1, "no artifact version 'nope'"),
        (["steps", "logs", "latest", "x"], 1, "there are no runs yet"),
        (["rnus"], 2, "did you mean 'runs'"),
    ],
)
def test_errors(runner: CliRunner, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())


def test_init_creates_the_project(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0
    assert (tmp_path / "new" / ".gristmill" / "metadata.db").exists()
    assert "Created" in result.output
    assert "Already initialized" in CliRunner().invoke(cli, ["init", str(tmp_path / "new")]).output


def test_the_installed_command(project: Project) -> None:
    (project.root / "demo_mod.py").write_text(PIPELINE_MODULE)
    env = {**os.environ, "GRISTMILL_PROJECT": str(project.root)}
    gristmill = Path(sys.executable).with_name("gristmill")
    ok = subprocess.run(
        [str(gristmill), "run", "demo_mod.py:demo"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    failed = subprocess.run(
        [str(gristmill), "run", "demo_mod.py:broken"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    version = subprocess.run([str(gristmill), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("gristmill, version")
