"""`gristmill runs delete` and `Client.delete_run`: what goes, what stays, what is refused.
The store's side runs on SQLite and PostgreSQL in the conformance suite
(`MetadataStoreConformance.test_deleting_runs`)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner

from gristmill import Client, pipeline, step
from gristmill.cli.main import cli
from gristmill.errors import NotFoundError, StoreError
from gristmill.project import Project
from gristmill.store import Entity, RunRecord, Status, StepRunRecord, StepStart
from gristmill.store.ids import pipeline_version_id


@step(cache=False)
def produce(n: int = 3) -> list:
    return list(range(n))


@step(cache=False)
def add_up(xs: list) -> float:
    return float(sum(xs))


@pipeline
def summing(n: int = 3) -> None:
    add_up(produce(n))


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input)


def _consume(store: Any, version_id: str, *, name: str = "consumer-run") -> None:
    """Record a run (still running) whose step took ``version_id`` as an input."""
    now = time.time()
    spec_hash = "e" * 64
    run = RunRecord(
        id=name.encode().hex()[:32].ljust(32, "0"),
        name=name,
        pipeline_name="consumer",
        pipeline_version_id=pipeline_version_id("consumer", spec_hash),
        status=Status.RUNNING,
        created_at=now,
        spec_hash=spec_hash,
    )
    step_run = StepRunRecord(
        id=run.id[::-1], run_id=run.id, name="use", source="m:use", status="pending", created_at=now
    )
    store.create_run(run, [step_run], spec_json="{}")
    store.publish_step_run(
        step_run.id,
        start=StepStart(now, {"xs": version_id}, "code", None, {}),
        status=Status.COMPLETED,
        ended_at=now,
        outputs={},
    )


def test_delete_a_run_with_what_only_it_holds(project: Project) -> None:
    kept = summing(n=2)
    run = summing(n=5)
    client = Client()
    total = run.steps["add_up"].output()
    result = invoke("runs", "delete", run.name, "--yes")
    assert result.exit_code == 0, result.output
    assert f"Deleted 1 run ({run.name}), 2 step runs and 2 artifact versions." in result.output
    with pytest.raises(NotFoundError):
        client.get_run(run.id)
    with pytest.raises(NotFoundError):
        client.get_artifact_version(total.id)
    assert client.store.get_metadata(Entity.RUN, [run.id])[run.id] == []
    assert client.get_run(kept.id).steps["add_up"].output().load() == 1.0
    # the bytes stay (content-addressed; cleaning up unreferenced bytes is another command)
    assert project.artifact_store().exists(total.uri)


def test_delete_asks_first_and_says_what_goes(project: Project) -> None:
    run = summing(n=4)
    declined = invoke("runs", "delete", "latest", input="n\n")
    assert declined.exit_code == 1
    for text in (run.name, "2 step runs", "add_up.output:", "artifact bytes stay", "Delete?"):
        assert text in declined.output
    Client().get_run(run.id)  # still there
    accepted = invoke("runs", "delete", "latest", "--json", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    done = json.loads(accepted.output[accepted.output.index("{") :])
    assert done["runs"] == [run.id] and done["step_runs"] == 2
    assert len(done["artifact_versions"]) == 2


def test_delete_refuses_a_run_whose_outputs_others_used(project: Project) -> None:
    run = summing(n=6)
    client = Client()
    _consume(client.store, run.steps["produce"].output().id)
    refused = invoke("runs", "delete", run.id, "--yes")
    assert refused.exit_code == 1
    message = " ".join(refused.output.split())
    assert "other runs used its artifact versions summing.produce.output:" in message
    assert "run consumer-run (step use)" in message
    assert "`gristmill runs delete RUN consumer-run`" in message
    client.get_run(run.id)  # nothing deleted
    # still running: refused unless --force
    running = invoke("runs", "delete", "consumer-run", run.id, "--yes")
    assert running.exit_code == 1 and "still running" in running.output
    both = invoke("runs", "delete", "consumer-run", run.id, "--yes", "--force")
    assert both.exit_code == 0, both.output
    assert client.count_runs() == 0


def test_client_delete_run(project: Project) -> None:
    first = summing(n=3)
    client = Client()
    with pytest.raises(StoreError, match="still running"):
        _consume(client.store, first.steps["add_up"].output().id, name="other")
        client.delete_run("other")
    deletion = client.delete_run("other", force=True)
    assert [r.name for r in deletion.runs] == ["other"] and deletion.artifact_versions == []
    assert client.delete_run(first.name).runs[0].id == first.id
    with pytest.raises(NotFoundError):
        client.delete_run(first.id)


def test_delete_help_says_bytes_stay() -> None:
    shown = " ".join(invoke("runs", "delete", "--help").output.split())
    assert "bytes stay in the artifact store" in shown
    assert "--force" in shown and "--yes" in shown
