"""The SQL metadata store: schema and migrations, lookups, lineage, dead-run detection,
concurrent writers."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from fixtures.pipelines import splitting, summing
from gristmill import Client, pipeline, step
from gristmill.errors import NotFoundError, StoreError
from gristmill.project import Project
from gristmill.store import schema
from gristmill.store.migrations import HEAD_REVISION, head_revision, upgrade
from gristmill.store.sql import SQLStore


def test_migrations_build_exactly_the_declared_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert head_revision() == HEAD_REVISION
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with engine.begin() as conn:
        upgrade(conn)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []
    # and a store opens a migrated database without touching it
    store = SQLStore(f"sqlite:///{tmp_path / 'migrated.db'}")
    assert store.list_runs() == []


def test_a_database_from_a_newer_gristmill_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    SQLStore(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="upgrade gristmill"):
        SQLStore(url)


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    with create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(StoreError, match="has gristmill tables but no schema version"):
        SQLStore(url)


def test_unreachable_database_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the metadata store"):
        SQLStore(f"sqlite:///{blocker}/sub/metadata.db")
    with pytest.raises(StoreError, match="cannot use the metadata store URL"):
        SQLStore("nosuchdialect://user:secret@host/db")
    with pytest.raises(StoreError) as caught:
        SQLStore("nosuchdialect://user:secret@host/db")
    assert "secret" not in str(caught.value)


def test_run_lookups(project: Project) -> None:
    first = summing()
    second = summing(n=4)
    client = Client()
    assert client.get_run(first.id[:8]).id == first.id
    assert client.get_run(second.name).id == second.id
    assert client.get_run("latest").id == second.id
    assert [r.id for r in client.list_runs()] == [second.id, first.id]
    assert [r.id for r in client.list_runs(limit=1, offset=1)] == [first.id]
    assert client.count_runs(pipeline="summing") == 2
    assert client.list_runs(pipeline="splitting") == []
    assert client.list_runs(status="failed") == []
    with pytest.raises(NotFoundError, match="no run with id or name 'summing-nope'"):
        client.get_run("summing-nope")
    [info] = client.list_pipelines()
    assert (info.name, info.run_count, info.version_count) == ("summing", 2, 1)
    with pytest.raises(NotFoundError, match="did you mean 'summing'"):
        client.get_pipeline("suming")


def test_artifact_lookups_and_versions() -> None:
    summing(n=3)
    summing(n=4)
    client = Client()
    latest = client.get_artifact_version("total")
    assert (latest.version, latest.load()) == (2, 6.0)
    assert client.get_artifact_version("total:1").load() == 3.0
    assert client.get_artifact_version(latest.id[:10]).id == latest.id
    assert [av.version for av in client.list_artifact_versions(name="total")] == [2, 1]
    assert len(client.list_artifact_versions(run="latest")) == 2
    with pytest.raises(NotFoundError, match="did you mean 'total'"):
        client.get_artifact_version("totl:1")


def test_lineage_up_and_down() -> None:
    run = splitting(n=4)
    client = Client()
    sum_odds = run.steps["sum_odds"].output()
    numbers = run.steps["numbers"].output()
    up = client.lineage(sum_odds.id)
    assert [av.name for av in up.others()] == ["odds", "splitting.numbers.output"]
    assert {(s.name) for s in up.graph.step_runs.values()} == {"sum_odds", "split"}
    down = {av.name for av in numbers.downstream()}
    assert down == {"evens", "odds", "total"}
    assert numbers.upstream() == []


def test_dead_runs_are_detected(project: Project) -> None:
    """A run whose process died is marked failed; its finished steps' outputs are kept."""
    script = project.root / "slow.py"
    script.write_text(
        "import os, time\n"
        "from gristmill import step, pipeline\n"
        "@step\n"
        "def quick() -> int:\n"
        "    return 7\n"
        "@step\n"
        "def hang(x: int) -> int:\n"
        "    open('started', 'w').close()\n"
        "    time.sleep(60)\n"
        "    return x\n"
        "@pipeline\n"
        "def p():\n"
        "    hang(quick())\n"
        "if __name__ == '__main__':\n"
        "    p()\n"
    )
    process = subprocess.Popen([sys.executable, str(script)], cwd=project.root)
    deadline = time.time() + 30
    while not (project.root / "started").exists():
        assert time.time() < deadline, "the step never started"
        time.sleep(0.05)
    # a step that takes more than a moment is shown as running
    while Client().get_run("latest").steps["hang"].status != "running":
        assert time.time() < deadline, "the step was never shown as running"
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert Client().get_run("latest").status == "running"  # reading never writes
    assert [r.id for r in Client().reap_dead_runs()] == [Client().get_run("latest").id]
    run = Client().get_run("latest")
    assert run.status == "failed"
    assert "is gone" in (run.error or "")
    assert run.steps["quick"].status == "completed"
    assert run.steps["quick"].output().load() == 7
    assert run.steps["hang"].status == "failed"


def test_stale_heartbeat_from_another_host_is_detected(project: Project) -> None:
    run = summing()
    store = project.store()
    assert isinstance(store, SQLStore)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE runs SET status='running', host='elsewhere', heartbeat_at=? WHERE id=?",
            (time.time() - 3600, run.id),
        )
    assert store.reap_dead_runs(time.time()) == [run.id]
    assert Client().get_run(run.id).status == "failed"


def test_concurrent_threads_writing_one_sqlite_store() -> None:
    errors: list[BaseException] = []

    @step(cache=False)
    def work(i: int) -> int:
        return i

    @pipeline
    def p(i: int = 0) -> None:
        work(i=i)

    # All eight start writing together, so the writes really contend.
    start = threading.Barrier(8)

    def target(i: int) -> None:
        try:
            start.wait(timeout=10)
            for _ in range(3):
                p(i=i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Client().count_runs(pipeline="p") == 24


def test_concurrent_processes_writing_one_sqlite_store(project: Project) -> None:
    script = project.root / "many.py"
    script.write_text(
        "import sys\n"
        "from gristmill import step, pipeline\n"
        "@step(cache=False)\n"
        "def work(i: int) -> int:\n"
        "    return i * 2\n"
        "@pipeline\n"
        "def p(i: int = 0):\n"
        "    work(i=i)\n"
        "if __name__ == '__main__':\n"
        "    for _ in range(5):\n"
        "        p(i=int(sys.argv[1]))\n"
    )
    env = {**os.environ}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(i)],
            cwd=project.root,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "locked" not in err
    client = Client()
    assert client.count_runs() == 40
    assert {r.status for r in client.list_runs(limit=100)} == {"completed"}
    # every run's output is there and loads
    assert len({r.steps["work"].output().load() for r in client.list_runs(limit=100)}) == 8
