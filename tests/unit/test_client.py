"""The Client: built from a project or from parts (a store and an artifact store), reads that
never write, and dead-run detection as an explicit step."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fixtures.pipelines import splitting, summing
from gristmill import Client
from gristmill.artifacts import LocalArtifactStore
from gristmill.errors import ConfigError
from gristmill.project import PROJECT_DIR, Project, close_stores


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _dump(database: Path) -> list[str]:
    """Every row of the database, read through a connection of its own."""
    with sqlite3.connect(database) as conn:
        return list(conn.iterdump())


def _outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (and HOME) in no project, with no gristmill environment."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("GRISTMILL_PROJECT", "GRISTMILL_STORE_URL", "GRISTMILL_STACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.chdir(empty)
    if any((folder / PROJECT_DIR).exists() for folder in empty.parents):
        pytest.skip("a parent of the temporary folder holds a .gristmill/ project")
    return empty


def _make_dead(project: Project, run_id: str) -> None:
    """Make a finished run look like one whose host went silent an hour ago."""
    with sqlite3.connect(project.directory / "metadata.db") as conn:
        conn.execute(
            "UPDATE runs SET status='running', ended_at=NULL, host='elsewhere', heartbeat_at=? "
            "WHERE id=?",
            (time.time() - 3600, run_id),
        )


def test_a_client_outside_a_project_is_an_error_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = _outside(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=r"no gristmill project in .* or any parent folder"):
        Client()
    with pytest.raises(ConfigError, match="run `gristmill init"):
        Client(project=empty / "elsewhere")
    with pytest.raises(ConfigError, match="does not exist"):
        Client(store=f"sqlite:///{empty / 'missing.db'}")
    assert _tree(empty) == []
    assert not (tmp_path / PROJECT_DIR).exists()


def test_a_client_from_parts_in_a_process_with_no_project(project: Project, tmp_path: Path) -> None:
    run = splitting(n=4)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    script = textwrap.dedent(
        f"""
        import json
        from gristmill import Client
        client = Client(
            store={f"sqlite:///{project.directory / 'metadata.db'}"!r},
            artifact_store={str(project.directory / "artifacts")!r},
        )
        run = client.get_run("latest")
        listed = [r.id for r in client.list_runs()]
        total = client.get_artifact_version("total").load()
        odds = run.steps["split"].outputs["odds"].load()
        print(json.dumps({{"run": run.id, "listed": listed, "total": total, "odds": odds}}))
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GRISTMILL_PROJECT", "GRISTMILL_STORE_URL", "GRISTMILL_STACK")
    }
    env["HOME"] = str(empty)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=empty, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    assert read == {"run": run.id, "listed": [run.id], "total": 4.0, "odds": [1, 3]}
    assert _tree(empty) == []


def test_a_client_from_store_and_artifact_store_objects(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = summing(n=3)
    store = project.store()
    _outside(tmp_path, monkeypatch)
    client = Client(
        store=store, artifact_store=LocalArtifactStore(str(project.directory / "artifacts"))
    )
    assert client.get_run(run.id).steps["total"].output().load() == 3.0
    with pytest.raises(ConfigError, match="no project folder"):
        client.project  # noqa: B018 - the property raises
    # without an artifact store, the project's default local store cannot be found
    bare = Client(store=store)
    assert bare.get_run(run.id).status == "completed"
    with pytest.raises(ConfigError, match=r"pass Client\(artifact_store=\.\.\.\)"):
        bare.get_artifact_version("total").load()
    # one that does not hold the artifact's URI is not used for it
    other = Client(store=store, artifact_store=tmp_path / "other-root")
    with pytest.raises(ConfigError, match="other-root"):
        other.get_artifact_version("total").load()


def test_a_client_from_parts_uses_the_artifact_store_a_stack_names(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = project.store()
    root = tmp_path / "shared-artifacts"
    store.save_component("artifact_store", "shared", "local", {"root": str(root)})
    store.save_stack("shared", {"orchestrator": "local", "artifact_store": "shared"})
    monkeypatch.setenv("GRISTMILL_STACK", "shared")
    run = summing(n=5)
    assert run.steps["total"].output().uri.startswith(str(root.resolve()))
    _outside(tmp_path, monkeypatch)
    client = Client(store=store)  # no artifact store given: the stack says where it is
    assert client.get_run(run.id).steps["total"].output().load() == 10.0


def test_reads_do_not_write_and_reaping_is_explicit(project: Project) -> None:
    run = splitting(n=4)
    _make_dead(project, run.id)
    database = project.directory / "metadata.db"
    before = _dump(database)
    client = Client()
    assert client.get_run("latest").status == "running"
    assert client.get_run(run.id).status == "running"
    assert [r.status for r in client.list_runs()] == ["running"]
    assert client.count_runs(status="running") == 1
    assert client.list_artifact_versions(run=run.id)
    assert client.upstream("total")
    assert [p.name for p in client.list_pipelines()] == ["splitting"]
    assert _dump(database) == before  # nothing was written, dead run included

    reaped = client.reap_dead_runs()
    assert [r.id for r in reaped] == [run.id]
    assert reaped[0].status == "failed" and "no heartbeat" in (reaped[0].error or "")
    assert client.get_run(run.id).status == "failed"
    assert client.get_run(run.id).steps["sum_odds"].output().load() == 4.0
    assert client.reap_dead_runs() == []


def test_a_pipeline_run_still_creates_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = _outside(tmp_path, monkeypatch)
    try:
        run = summing(n=2)
        assert (empty / PROJECT_DIR / "metadata.db").exists()
        assert Client().get_run(run.id).steps["total"].output().load() == 1.0
    finally:
        close_stores()
