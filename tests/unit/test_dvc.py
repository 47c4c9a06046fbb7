"""DVC-tracked data as step inputs, proven with the real ``dvc`` package in a temporary git
repository: the run records the data's md5 and git commit, lineage reaches it, and a changed
data file re-runs exactly the steps downstream of it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest

from gristmill import Client, DVCPath, pipeline, step
from gristmill.errors import (
    DataVersionError,
    MaterializerError,
    NotFoundError,
    PipelineDefinitionError,
)
from gristmill.spec import PipelineSpec

pytest.importorskip("dvc")
pytestmark = pytest.mark.integration

DVC = str(Path(sys.executable).with_name("dvc"))
FIRST = "x,y\n1,2\n2,4\n3,6\n"
SECOND = "x,y\n1,3\n2,6\n3,9\n4,12\n"


def sh(repo: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def dvc_add(repo: Path, text: str, message: str) -> str:
    """Write data/raw.csv, ``dvc add`` it and commit the .dvc file; the new commit."""
    (repo / "data" / "raw.csv").write_text(text)
    sh(repo, DVC, "add", "-q", "data/raw.csv")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", message)
    return sh(repo, "git", "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git + DVC repository with data/raw.csv tracked (tag v1), as the working directory."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    for key, value in {
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }.items():
        monkeypatch.setenv(key, value)
    sh(root, "git", "init", "-q")
    sh(root, DVC, "init", "-q")
    dvc_add(root, FIRST, "first data")
    sh(root, "git", "tag", "v1")
    monkeypatch.chdir(root)
    yield root


# -- the pipeline: load(raw) → clean → train, and a branch that does not read the data ------


@step
def load(raw: Path) -> list[list[float]]:
    lines = raw.read_text().splitlines()[1:]
    return [[float(v) for v in line.split(",")] for line in lines]


@step
def clean(rows: list[list[float]]) -> list[list[float]]:
    return [r for r in rows if len(r) == 2]


@step
def train(rows: list[list[float]]) -> Annotated[dict[str, float], "model"]:
    return {"slope": sum(y for _, y in rows) / sum(x for x, _ in rows)}


@step
def settings(depth: int = 3) -> dict[str, int]:
    return {"depth": depth}


@step
def describe(config: dict[str, int]) -> str:
    return f"depth {config['depth']}"


@pipeline
def training() -> None:
    train(clean(load(DVCPath("data/raw.csv"))))
    describe(settings())


def statuses(run: object) -> dict[str, str]:
    return {name: s.status for name, s in run.steps.items()}  # type: ignore[attr-defined]


def test_a_new_dvc_add_re_runs_exactly_the_steps_that_read_the_data(repo: Path) -> None:
    client = Client()
    first_commit = sh(repo, "git", "rev-parse", "HEAD")
    first_md5 = _md5_in(repo / "data" / "raw.csv.dvc")
    first = training()
    assert first.steps["train"].outputs["model"].load() == {"slope": 2.0}
    assert set(statuses(first).values()) == {"completed"}
    # the run records the data's DVC md5 and the git commit it was read at
    recorded = first.config["resolved_data"]["load"]["raw"]
    assert recorded == {
        "path": "data/raw.csv",
        "md5": first_md5,
        "git_rev": first_commit,
        "artifact_version": "dvc:data/raw.csv:1",
    }
    pointer = first.steps["load"].inputs["raw"]
    assert (pointer.name, pointer.version) == ("dvc:data/raw.csv", 1)
    assert pointer.producer is None  # data from outside the pipelines
    assert pointer.metadata["md5"] == first_md5 and pointer.metadata["git_rev"] == first_commit
    assert first.config["resolved_artifacts"] == {"load": {"raw": pointer.id}}
    # lineage: from the model back to the DVC data's version
    upstream = {
        (av.name, av.version) for av in client.upstream(first.steps["train"].outputs["model"].id)
    }
    assert ("dvc:data/raw.csv", 1) in upstream
    assert (
        first.steps["train"].id
        in client.lineage(pointer.id, direction="downstream").graph.step_runs
    )

    # the same data again: everything is cached, and no new version is made
    again = training()
    assert set(statuses(again).values()) == {"cached"}
    assert again.steps["load"].inputs["raw"].id == pointer.id

    # new data, `dvc add`: exactly the steps downstream of it re-run
    second_commit = dvc_add(repo, SECOND, "second data")
    second = training()
    assert statuses(second) == {
        "load": "completed",
        "clean": "completed",
        "train": "completed",
        "settings": "cached",
        "describe": "cached",
    }
    assert second.steps["train"].outputs["model"].load() == {"slope": 3.0}
    recorded = second.config["resolved_data"]["load"]["raw"]
    assert recorded["md5"] == _md5_in(repo / "data" / "raw.csv.dvc") != first_md5
    assert recorded["git_rev"] == second_commit
    assert second.steps["load"].inputs["raw"].version == 2

    # `dvc checkout` of the first data (as a pull of other data would): the first run's cache
    sh(repo, "git", "checkout", "-q", "v1", "--", "data/raw.csv.dvc")
    sh(repo, DVC, "checkout", "-q", "data/raw.csv")
    back = training()
    assert set(statuses(back).values()) == {"cached"}
    assert back.steps["load"].inputs["raw"].id == pointer.id  # same md5: the same version
    assert [av.version for av in client.list_artifact_versions(name="dvc:data/raw.csv")] == [2, 1]


def test_a_past_revision_is_fetched_read_only_under_the_project(repo: Path) -> None:
    dvc_add(repo, SECOND, "second data")

    @pipeline(name="training_v1")
    def training_v1() -> None:
        train(clean(load(DVCPath("data/raw.csv", rev="v1"))))

    run = training_v1()
    assert run.steps["train"].outputs["model"].load() == {"slope": 2.0}  # v1's data
    recorded = run.config["resolved_data"]["load"]["raw"]
    assert recorded["rev"] == "v1"
    assert recorded["git_rev"] == sh(repo, "git", "rev-parse", "v1")
    fetched = run.steps["load"].inputs["raw"].load()
    assert fetched.read_text() == FIRST
    assert Path(os.environ["GRISTMILL_PROJECT"]) / ".gristmill" / "dvc" in fetched.parents
    assert not fetched.stat().st_mode & stat.S_IWUSR  # read-only
    assert (repo / "data" / "raw.csv").read_text() == SECOND  # the workspace is untouched


def test_data_changed_since_the_run_recorded_it_is_a_clear_error(repo: Path) -> None:
    from gristmill.reproduce import reproduce_run

    first = training()
    md5 = first.config["resolved_data"]["load"]["raw"]["md5"]
    (repo / "data" / "raw.csv").write_text(SECOND)
    # loading the recorded version: the workspace no longer holds that data
    with pytest.raises(MaterializerError) as raised:
        first.steps["load"].inputs["raw"].load()
    assert isinstance(raised.value.__cause__, DataVersionError)
    message = str(raised.value)
    assert f"data/raw.csv changed since the run recorded md5 {md5}" in message
    assert "dvc checkout data/raw.csv" in message and "re-run" in message
    # a new run refuses data its .dvc entry does not record, before anything runs
    with pytest.raises(DataVersionError, match=r"step 'load'.*input 'raw'.*dvc add data/raw.csv"):
        training()
    # reproducing the first run uses the recorded md5: its load step fails with the message
    reproduced = reproduce_run(first.id, code="current").new
    assert reproduced.status == "failed" and reproduced.steps["train"].status == "stopped"
    assert "changed since the run recorded md5" in str(reproduced.steps["load"].error)
    sh(repo, DVC, "checkout", "-q", "--force", "data/raw.csv")
    assert first.steps["load"].inputs["raw"].load() == repo / "data" / "raw.csv"


def test_a_path_dvc_does_not_track_fails_at_run_start_naming_step_argument_and_fix(
    repo: Path,
) -> None:
    (repo / "data" / "other.csv").write_text(FIRST)

    @pipeline(name="untracked")
    def untracked() -> None:
        load(DVCPath("data/other.csv"))

    with pytest.raises(NotFoundError) as raised:
        untracked()
    message = str(raised.value)
    assert "step 'load'" in message and "input 'raw'" in message
    assert "not tracked by DVC" in message and "`dvc add data/other.csv`" in message
    assert Client().list_runs() == []  # nothing recorded


def test_yaml_form_and_spec_round_trip(repo: Path, tmp_path: Path) -> None:
    from gristmill.yaml_pipelines import load_pipeline

    path = tmp_path / "training.yaml"
    path.write_text(
        "name: training_yaml\n"
        "steps:\n"
        "  load:\n"
        "    uses: tests.unit.test_dvc:load\n"
        "    inputs: {raw: {dvc: data/raw.csv, rev: v1}}\n"
        "  clean: {uses: 'tests.unit.test_dvc:clean', inputs: {rows: load}}\n"
    )
    loaded = load_pipeline(str(path))
    dvc_add(repo, SECOND, "second data")
    run = loaded()
    assert run.steps["clean"].outputs["output"].load() == [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]
    assert run.config["resolved_data"]["load"]["raw"]["rev"] == "v1"

    spec = training.spec()
    again = PipelineSpec.from_json(spec.to_json())
    assert again.step("load").external_inputs == {"raw": DVCPath("data/raw.csv")}
    assert again.hash == spec.hash
    assert DVCPath("./data/raw.csv", rev="v1").to_dict() == {"dvc": "data/raw.csv", "rev": "v1"}
    for bad in ("/etc/passwd", "../outside.csv", ""):
        with pytest.raises(PipelineDefinitionError):
            DVCPath(bad)


def _md5_in(dvc_file: Path) -> str:
    import yaml

    return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])


@step
def count_files(images: Path) -> int:
    return sum(1 for p in images.iterdir() if p.is_file())


def test_a_tracked_folder_is_an_input_with_its_dir_md5(repo: Path) -> None:
    folder = repo / "images"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(name)
    sh(repo, DVC, "add", "-q", "images")

    @pipeline(name="folder")
    def counting() -> None:
        count_files(DVCPath("images"))

    run = counting()
    assert run.steps["count_files"].outputs["output"].load() == 2
    assert run.config["resolved_data"]["count_files"]["images"]["md5"].endswith(".dir")
    (folder / "c.txt").write_text("c")
    with pytest.raises(DataVersionError, match="dvc add images"):
        counting()
    sh(repo, DVC, "add", "-q", "images")
    again = counting()
    assert again.steps["count_files"].status == "completed"
    assert again.steps["count_files"].outputs["output"].load() == 3


def test_the_cli_shows_the_data_version(repo: Path) -> None:
    from click.testing import CliRunner

    from gristmill.cli.main import cli

    run = training()
    md5 = run.config["resolved_data"]["load"]["raw"]["md5"]
    shown = CliRunner().invoke(cli, ["artifacts", "show", "dvc:data/raw.csv:1"])
    assert shown.exit_code == 0, shown.output
    assert md5 in shown.output
    listed = CliRunner().invoke(cli, ["artifacts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "dvc:data/raw.csv" in listed.output
    config = CliRunner().invoke(cli, ["runs", "show", run.id, "--config"])
    assert config.exit_code == 0, config.output
    assert "resolved_data" in config.output and md5 in config.output
