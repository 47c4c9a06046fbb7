"""Every failure once a step run exists is recorded: the step run ends ``failed`` with its
error, and the run ends ``failed`` with an error naming it (never left ``pending``). Failures
are injected into the real objects (the SQL store, the local artifact store, the launcher's
collaborators) with monkeypatch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

import pytest

from gristmill import Client, RunFailedError, pipeline, step
from gristmill.artifacts import LocalArtifactStore
from gristmill.client import Run
from gristmill.errors import ArtifactStoreError, StoreError
from gristmill.execution import RunContext
from gristmill.execution import launcher as launcher_module
from gristmill.project import Project

CALLS: list[str] = []


@step
def make(n: int = 3) -> list:
    CALLS.append("make")
    return list(range(n))


@step
def add_up(xs: list) -> Annotated[int, "total"]:
    CALLS.append("add_up")
    return sum(xs)


@pipeline
def chain(n: int = 3) -> None:
    add_up(make(n))


def _boom(message: str) -> Callable[..., Any]:
    def raising(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(message)

    return raising


def _failed_run(run_pipeline: Callable[[], Any], match: str) -> Run:
    with pytest.raises(RunFailedError, match=match) as caught:
        run_pipeline()
    run = caught.value.run
    assert run is not None
    # read back from the store, not from the objects the run held
    return Client().get_run(run.id)


def _assert_recorded(run: Run, step_id: str, text: str) -> None:
    assert run.status == "failed"
    assert run.ended_at is not None
    assert f"step '{step_id}' failed" in (run.error or "") and text in (run.error or "")
    failed = run.steps[step_id]
    assert failed.status == "failed"
    assert text in (failed.error or "")
    assert all(s.status not in ("pending", "running") for s in run.steps.values())


def _store_class(project: Project) -> type[Any]:
    return type(project.store())


def test_resolving_an_input_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = RunContext.output_of

    def output_of(self: RunContext, step_id: str, output: str) -> Any:
        if step_id == "make":
            raise RuntimeError("input lookup broke")
        return real(self, step_id, output)

    monkeypatch.setattr(RunContext, "output_of", output_of)
    run = _failed_run(chain, "input lookup broke")
    _assert_recorded(run, "add_up", "input lookup broke")
    assert run.steps["make"].status == "completed"


def test_computing_the_cache_key_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher_module, "cache_key", _boom("cannot hash that"))
    run = _failed_run(chain, "cannot hash that")
    _assert_recorded(run, "make", "cannot hash that")
    assert run.steps["add_up"].status == "stopped"


def test_the_cache_lookup_fails(monkeypatch: pytest.MonkeyPatch, project: Project) -> None:
    monkeypatch.setattr(_store_class(project), "find_cached", _boom("cache table gone"))
    run = _failed_run(chain, "cache table gone")
    _assert_recorded(run, "make", "cache table gone")


def test_checking_a_cached_outputs_data_fails(
    monkeypatch: pytest.MonkeyPatch, project: Project
) -> None:
    chain(n=4)
    CALLS.clear()
    monkeypatch.setattr(LocalArtifactStore, "exists", _boom("disk offline"))
    run = _failed_run(lambda: chain(n=4), "disk offline")
    _assert_recorded(run, "make", "disk offline")
    assert CALLS == []  # failed at the cache check, before calling anything


def test_loading_an_input_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def local_directory(self: LocalArtifactStore, uri: str) -> Any:
        raise ArtifactStoreError(f"artifact data at {uri} is unreadable")

    monkeypatch.setattr(LocalArtifactStore, "local_directory", local_directory)
    run = _failed_run(chain, "is unreadable")
    _assert_recorded(run, "add_up", "ArtifactStoreError")
    assert run.steps["add_up"].attempts == 1


def test_the_function_fails() -> None:
    @step
    def broken() -> int:
        print("about to break")
        raise ValueError("bad input")

    @pipeline
    def p() -> None:
        broken()

    run = _failed_run(p, "bad input")
    _assert_recorded(run, "broken", "ValueError: bad input")
    assert "about to break" in run.steps["broken"].logs()


def test_returning_the_wrong_number_of_outputs_fails() -> None:
    @step
    def two() -> tuple[Annotated[int, "a"], Annotated[int, "b"]]:
        return 1  # type: ignore[return-value]

    @pipeline
    def p() -> None:
        two()

    run = _failed_run(p, "declares 2 outputs")
    _assert_recorded(run, "two", "PipelineDefinitionError")


def test_saving_an_output_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def publish(self: LocalArtifactStore, staged: Any, known: Any = None) -> Any:
        raise ArtifactStoreError(f"could not store artifact data at {self.root}: disk full")

    monkeypatch.setattr(LocalArtifactStore, "publish", publish)
    run = _failed_run(chain, "disk full")
    _assert_recorded(run, "make", "disk full")
    assert run.steps["make"].outputs == {}


def test_publishing_fails_once(monkeypatch: pytest.MonkeyPatch, project: Project) -> None:
    store_class = _store_class(project)
    real = store_class.publish_step_run
    calls: list[str] = []

    def publish_step_run(self: Any, step_run_id: str, **kwargs: Any) -> Any:
        calls.append(step_run_id)
        if len(calls) == 1:
            raise StoreError("database is locked for good")
        return real(self, step_run_id, **kwargs)

    monkeypatch.setattr(store_class, "publish_step_run", publish_step_run)
    run = _failed_run(chain, "database is locked for good")
    _assert_recorded(run, "make", "StoreError: database is locked for good")
    assert run.steps["make"].outputs == {}
    assert run.steps["add_up"].status == "stopped"


def test_publishing_a_cache_hit_fails(monkeypatch: pytest.MonkeyPatch, project: Project) -> None:
    chain(n=5)
    monkeypatch.setattr(_store_class(project), "publish_step_run", _boom("cannot link outputs"))
    run = _failed_run(lambda: chain(n=5), "cannot link outputs")
    _assert_recorded(run, "make", "cannot link outputs")


def test_saving_logs_fails_without_failing_the_step(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Logs are kept when they can be; a step whose outputs were published is not failed
    # because its log file could not be written, and nothing is left pending.
    @step
    def chatty() -> int:
        print("hello")
        return 1

    @pipeline
    def p() -> None:
        chatty()

    monkeypatch.setattr(LocalArtifactStore, "write_text", _boom("logs volume gone"))
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        run = p()
    assert run.status == "completed"
    assert run.steps["chatty"].status == "completed"
    assert "could not save the logs of step 'chatty': logs volume gone" in caplog.text


def test_a_step_failure_the_store_cannot_take_still_ends_the_run(
    monkeypatch: pytest.MonkeyPatch, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    store_class = _store_class(project)
    monkeypatch.setattr(LocalArtifactStore, "publish", _boom("disk full"))
    monkeypatch.setattr(store_class, "fail_step_run", _boom("store unreachable"))
    with caplog.at_level(logging.ERROR, logger="gristmill"):
        run = _failed_run(chain, "disk full")
    assert "step 'make' failed (RuntimeError: disk full)" in caplog.text
    assert "could not be recorded in the metadata store" in caplog.text
    assert run.status == "failed" and "disk full" in (run.error or "")
    # ended at the run's end with what was known, not left pending
    assert run.steps["make"].status == "stopped"
    assert "disk full" in (run.steps["make"].error or "")
    assert all(s.status not in ("pending", "running") for s in run.steps.values())


def test_interrupts_are_recorded_and_let_through(
    monkeypatch: pytest.MonkeyPatch, project: Project
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(_store_class(project), "find_cached", interrupted)
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted in step 'make'; run .* stopped$"):
        chain()  # not in the step's code: no line to show
    run = Client().get_run("latest")
    assert run.status == "stopped"
    assert run.steps["make"].status == "stopped"
    assert run.steps["make"].error == "interrupted by the user"
    assert all(s.status == "stopped" for s in run.steps.values())


def test_the_monitor_says_once_when_it_cannot_write(
    monkeypatch: pytest.MonkeyPatch, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    from gristmill.execution import run as run_module

    store = project.store()
    monkeypatch.setattr(run_module, "HEARTBEAT_SECONDS", 0.0)  # a beat every tick
    monkeypatch.setattr(type(store), "heartbeat", _boom("store is down"))
    monitor = run_module._Monitor(store, "0" * 32)
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        monitor.start()
        time.sleep(0.5)
        monitor.stop()
    warnings = [r.getMessage() for r in caplog.records if "could not update run" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited, though every beat failed
    assert "RuntimeError: store is down" in warnings[0]


def test_an_environment_probe_failure_is_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gristmill.execution import environment

    monkeypatch.setattr(environment, "_record_packages", _boom("cannot list packages"))
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        run = chain()
    assert run.status == "completed"
    assert "packages" not in run.environment
    assert "the run is recorded without its package list: RuntimeError: cannot list packages" in (
        caplog.text
    )
