"""Reproducibility: what a run records about its code and environment, `reproduce`, `rerun
--from` and `runs diff`."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from gristmill import Client
from gristmill.cli.main import cli
from gristmill.execution.environment import package_list, snapshot_manifest
from gristmill.project import Project
from gristmill.reproduce import diff_runs, reproduce_run, rerun
from gristmill.testing import write_module

MODULE = """
import random
from gristmill import step, pipeline, log_metadata

OFFSET = {offset}

def helper(x):
    return x * 2

@step
def source(n: int = 5) -> list:
    return list(range(n))

@step
def transform(xs: list) -> list:
    return [helper(x) + OFFSET for x in xs]

@step
def summarize(xs: list) -> float:
    log_metadata({{"total": float(sum(xs))}})
    return float(sum(xs))

@step
def side() -> int:
    return 42

@step
def noisy() -> float:
    return random.random()

@pipeline
def deterministic(n: int = 5):
    summarize(transform(source(n)))
    side()

@pipeline
def nondeterministic():
    noisy()
"""


@pytest.fixture
def user_module(project: Project, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A pipeline module of the user's own, importable from the project folder."""
    folder = project.root / "src"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(project.root)

    def write(offset: int) -> Any:
        return write_module(folder, "mypipes", MODULE.format(offset=offset))

    yield write
    sys.modules.pop("mypipes", None)


def test_a_run_records_its_code_and_packages(user_module: Any) -> None:
    module = user_module(0)
    run = module.deterministic()
    code = run.environment["code"]
    files = snapshot_manifest(run.artifact_store, code["snapshot"])
    assert "mypipes.py" in files
    assert code["files"] == len(files)
    packages = package_list(run.artifact_store, run.environment["packages"]["hash"])
    assert any(p.startswith("sqlalchemy==") for p in packages)
    assert run.environment["packages"]["count"] == len(packages)
    assert run.config["resolved_steps"] == {}  # every step on the defaults
    # the same code is stored once: a second run points at the same snapshot
    assert module.deterministic(n=6).environment["code"]["snapshot"] == code["snapshot"]


def test_reproduce_uses_the_recorded_code_and_matches(user_module: Any) -> None:
    original = user_module(0).deterministic(n=4)
    user_module(100)  # today's code is different ...
    result = reproduce_run(original.id)  # ... but the recorded snapshot runs
    assert result.matches, result.to_dict()
    assert {c.step for c in result.comparisons} == {"source", "transform", "summarize", "side"}
    assert result.new.status == "completed"
    assert {s.status for s in result.new.steps.values()} == {"completed"}  # no cache by default
    assert f"reproduces:{original.id[:12]}" in result.new.tags
    # with today's code the transform and what follows differ
    current = reproduce_run(original.id, code="current")
    assert not current.matches
    assert {c.step for c in current.comparisons if not c.same} == {"transform", "summarize"}


def test_reproduce_reports_a_nondeterministic_pipeline(user_module: Any) -> None:
    original = user_module(0).nondeterministic()
    result = CliRunner().invoke(cli, ["reproduce", original.id])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "noisy" in text and "differs" in text
    assert "1 of 1 artifacts differ" in text
    report = json.loads(CliRunner().invoke(cli, ["reproduce", original.id, "--json"]).stdout)
    assert report["matches"] is False
    assert report["artifacts"][0]["before"] != report["artifacts"][0]["after"]


def test_reproduce_cli_on_a_deterministic_run(user_module: Any) -> None:
    original = user_module(0).deterministic()
    result = CliRunner().invoke(cli, ["reproduce", original.name])
    assert result.exit_code == 0, result.output
    assert "All 4 artifacts match byte for byte" in " ".join(result.output.split())


def test_rerun_from_a_step(user_module: Any) -> None:
    original = user_module(0).deterministic(n=3)
    again = rerun(original.id, start="transform")
    statuses = {name: s.status for name, s in again.steps.items()}
    assert statuses == {
        "source": "cached",
        "transform": "completed",
        "summarize": "completed",
        "side": "cached",
    }
    assert again.steps["source"].cached_from == original.steps["source"].id
    assert again.steps["summarize"].output().load() == original.steps["summarize"].output().load()
    # with today's code, only the re-run steps see the change
    user_module(10)
    changed = rerun(original.id, start="transform", code="current")
    assert changed.steps["summarize"].output().load() == 2 * (0 + 1 + 2) + 3 * 10
    assert changed.steps["side"].status == "cached"
    result = CliRunner().invoke(cli, ["rerun", original.id, "--from", "summarize", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {s["name"]: s["status"] for s in data["steps"]}["summarize"] == "completed"
    bad = CliRunner().invoke(cli, ["rerun", original.id, "--from", "sumarize"])
    assert bad.exit_code == 1
    assert "did you mean 'summarize'" in bad.output


def test_runs_diff(user_module: Any) -> None:
    a = user_module(0).deterministic(n=3)
    b = user_module(7).deterministic(n=4)
    result = diff_runs(a.id, b.id)
    assert result["parameters"] == {"n": (3, 4)}
    assert result["metrics"]["total"] == (6.0, 2 * 6 + 4 * 7)
    assert result["code"]["changed"]
    [changed] = result["code"]["files"]
    assert changed["path"] == "mypipes.py"
    assert "-OFFSET = 0" in changed["diff"] and "+OFFSET = 7" in changed["diff"]
    assert {x["step"] for x in result["artifacts"]} == {"source", "transform", "summarize"}
    assert result["packages"] == {}
    assert not result["same"]
    assert diff_runs(a.id, a.id)["same"]
    shown = CliRunner().invoke(cli, ["runs", "diff", a.id, b.id])
    assert shown.exit_code == 0
    assert "+OFFSET = 7" in shown.output and "Parameters" in shown.output
    as_json = json.loads(CliRunner().invoke(cli, ["runs", "diff", a.id, b.id, "--json"]).stdout)
    assert as_json["parameters"] == {"n": [3, 4]}


def test_runs_show_config_shows_the_resolved_configuration(user_module: Any) -> None:
    run = user_module(0).deterministic.with_options(steps={"side": {"retries": 2}})(n=2)
    shown = json.loads(
        CliRunner().invoke(cli, ["runs", "show", run.id, "--config", "--json"]).stdout
    )
    assert shown["config"]["resolved_parameters"] == {"n": 2}
    assert shown["config"]["resolved_steps"]["side"]["retries"]["count"] == 2
    assert shown["environment"]["code"]["snapshot"]
    assert Client().get_run(run.id).config["steps"]["side"]["retries"]["count"] == 2
    requirements = (
        CliRunner().invoke(cli, ["runs", "show", run.id, "--packages"]).stdout.splitlines()
    )
    assert any(line.startswith("sqlalchemy==") for line in requirements)


def test_a_run_without_a_snapshot_needs_current_code(user_module: Any, project: Project) -> None:
    run = user_module(0).deterministic()
    store = project.store()
    from gristmill.store.sql import SQLStore

    assert isinstance(store, SQLStore)
    environment = {k: v for k, v in run.environment.items() if k != "code"}
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE runs SET environment=? WHERE id=?", (json.dumps(environment), run.id)
        )
    from gristmill.errors import ConfigError

    with pytest.raises(ConfigError, match="recorded no code snapshot; use --code current"):
        reproduce_run(run.id)
    assert reproduce_run(run.id, code="current").matches
