"""The `gristmill` command: exit codes, tables, --json for scripts, errors that say the fix."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
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
def runner(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    (project.root / "demo_mod.py").write_text(PIPELINE_MODULE)
    monkeypatch.chdir(project.root)
    sys.modules.pop("demo_mod", None)
    yield CliRunner()
    # Left imported, it would be part of later tests' code snapshots.
    sys.modules.pop("demo_mod", None)


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
            "latest_spec_hash": sys.modules["demo_mod"].demo.spec().hash,
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
        (["rnus"], 2, "no such command `gristmill rnus` — did you mean `gristmill runs`?"),
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


READS = [
    ["runs", "list"],
    ["runs", "list", "--json"],
    ["runs", "show"],
    ["runs", "show", "some-run", "--json"],
    ["runs", "diff", "a", "b"],
    ["runs", "reap"],
    ["steps", "logs", "latest", "train"],
    ["artifacts", "list"],
    ["artifacts", "show", "model"],
    ["artifacts", "load", "model"],
    ["lineage", "model"],
    ["pipeline", "list"],
    ["stack", "list"],
    ["stack", "describe"],
    ["stack", "set", "default"],
    ["component", "list"],
    ["secret", "list"],
    ["store", "show"],
]


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and HOME in no project, with no gristmill environment."""
    empty = tmp_path / "nowhere"
    empty.mkdir()
    for name in ("GRISTMILL_PROJECT", "GRISTMILL_STORE_URL", "GRISTMILL_STACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.chdir(empty)
    if any((folder / ".gristmill").exists() for folder in empty.parents):
        pytest.skip("a parent of the temporary folder holds a .gristmill/ project")
    return empty


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_reads_outside_a_project_say_so_and_create_nothing(nowhere: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0, result.output
    message = " ".join(result.output.split())
    assert (
        f"no gristmill project in {nowhere} or any parent folder; "
        "run `gristmill init` or pass --project" in message
    )
    assert _tree(nowhere) == []
    assert not any((folder / ".gristmill").exists() for folder in nowhere.parents)


def test_project_flag_names_the_folder_that_is_not_a_project(nowhere: Path) -> None:
    result = CliRunner().invoke(cli, ["--project", "elsewhere", "runs", "list"])
    assert result.exit_code != 0
    assert f"no gristmill project in {nowhere / 'elsewhere'}" in " ".join(result.output.split())
    assert _tree(nowhere) == []


def test_reads_with_a_store_url_need_no_project(
    project: Project, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.root / "demo_mod.py").write_text(PIPELINE_MODULE)
    sys.modules.pop("demo_mod", None)
    monkeypatch.syspath_prepend(str(project.root))
    monkeypatch.setenv("GRISTMILL_PROJECT", str(project.root))
    assert invoke(CliRunner(), "run", "demo_mod:demo").exit_code == 0
    monkeypatch.delenv("GRISTMILL_PROJECT")
    monkeypatch.setenv("GRISTMILL_STORE_URL", f"sqlite:///{project.directory / 'metadata.db'}")
    runner = CliRunner()
    listing = json.loads(invoke(runner, "runs", "list", "--json").output)
    assert [r["status"] for r in listing] == ["completed"]
    assert invoke(runner, "artifacts", "show", "score").exit_code == 0
    assert invoke(runner, "artifacts", "load", "score").output == "3.0\n"
    assert _tree(nowhere) == []
    # a URL naming a SQLite file that does not exist is not created by reading it
    monkeypatch.setenv("GRISTMILL_STORE_URL", f"sqlite:///{nowhere / 'typo.db'}")
    missing = CliRunner().invoke(cli, ["runs", "list"])
    assert missing.exit_code != 0 and "does not exist" in missing.output
    assert _tree(nowhere) == []


def test_runs_reap_marks_dead_runs_and_listing_does_not(
    runner: CliRunner, project: Project
) -> None:
    import sqlite3
    import time

    invoke(runner, "run", "demo_mod:demo")
    run_id = json.loads(invoke(runner, "runs", "list", "--json").output)[0]["id"]
    with sqlite3.connect(project.directory / "metadata.db") as conn:
        conn.execute(
            "UPDATE runs SET status='running', host='elsewhere', heartbeat_at=? WHERE id=?",
            (time.time() - 3600, run_id),
        )
    assert "runs reap" in invoke(runner, "runs", "list", "--help").output
    for _ in range(2):  # listing and showing leave the dead run as it is
        assert json.loads(invoke(runner, "runs", "list", "--json").output)[0]["status"] == "running"
        assert json.loads(invoke(runner, "runs", "show", "--json").output)["status"] == "running"
    reaped = json.loads(invoke(runner, "runs", "reap", "--json").output)
    assert [(r["id"], r["status"]) for r in reaped] == [(run_id, "failed")]
    assert "no heartbeat" in reaped[0]["error"]
    assert json.loads(invoke(runner, "runs", "list", "--json").output)[0]["status"] == "failed"
    assert "No dead runs" in invoke(runner, "runs", "reap").output


PROJECT_PIPELINE = """
from typing import Annotated
from gristmill import step, pipeline


class Box:  # a class of the project's own: stored with cloudpickle, by reference
    def __init__(self, value):
        self.value = value


@step
def load(n: int = 3) -> list:
    return list(range(n))


@step
def boxed(xs: list) -> Annotated[Box, "box"]:
    return Box(sum(xs))


@pipeline
def training(n: int = 3):
    boxed(load(n))
"""


def _installed(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    gristmill = Path(sys.executable).with_name("gristmill")
    return subprocess.run(
        [str(gristmill), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_project_code_is_importable_after_the_run(project: Project, tmp_path: Path) -> None:
    """`rerun --code current` from the project folder, and loading a pickled artifact from
    any folder, import the project's modules as the run did: no PYTHONPATH needed."""
    (project.root / "pipeline.py").write_text(PROJECT_PIPELINE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    first = _installed("run", "pipeline:training", cwd=project.root, env=env)
    assert first.returncode == 0, first.stderr
    again = _installed(
        "rerun", "latest", "--from", "boxed", "--code", "current", cwd=project.root, env=env
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No module named" not in again.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_elsewhere = {k: v for k, v in env.items() if k != "GRISTMILL_PROJECT"}
    code = (
        "from gristmill import Client\n"
        f"box = Client(project={str(project.root)!r}).get_artifact_version('box').load()\n"
        "print(type(box).__module__, box.value)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env_elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["pipeline", "3"]


def test_runs_show_config_is_yaml_and_types_read_the_same(runner: CliRunner) -> None:
    import yaml

    assert invoke(runner, "run", "demo_mod:demo", "-p", "n=4").exit_code == 0
    shown = invoke(runner, "runs", "show", "latest", "--config").output
    config = shown[shown.index("Configuration\n") + len("Configuration\n") : shown.index("Stack\n")]
    parsed = yaml.safe_load(config)
    assert parsed["resolved_parameters"] == {"n": 4, "name": "x"}
    assert "{'" not in shown  # no Python dict repr
    listing = invoke(runner, "artifacts", "list").output
    for output in (listing, invoke(runner, "runs", "show", "latest").output):
        assert "builtins." not in output
        assert " float " in output.replace("│", " ")
    detail = invoke(runner, "artifacts", "show", "score").output
    assert "builtins." not in detail and "float" in detail
