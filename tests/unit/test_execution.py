"""Running pipelines locally: outputs, statuses, metadata, step context, logs, failures,
hooks and retries."""

import logging
import sys
from typing import Annotated, Any

import pytest

from fixtures.pipelines import splitting, summing
from gristmill import Client, RunFailedError, get_step_context, log_metadata, pipeline, step
from gristmill.errors import GristmillError, InvalidMetadataError
from gristmill.execution.logs import _Tee


def test_run_returns_the_tracked_run_with_outputs() -> None:
    run = summing(n=4, scale=2.0)
    assert run.status == "completed"
    assert run.parameters == {"n": 4, "scale": 2.0}
    assert list(run.steps) == ["numbers", "total"]
    assert run.steps["numbers"].outputs["output"].load() == [0, 1, 2, 3]
    total = run.steps["total"].output("total")
    assert total.load() == 12.0
    assert total.name == "total"
    assert total.data_type == "builtins.float"
    assert total.materializer == "json"
    assert total.producer is not None and total.producer.name == "total"
    assert run.steps["total"].inputs["xs"].id == run.steps["numbers"].output().id
    assert run.metadata == {"count": 4}
    assert run.steps["total"].metadata == {"count": 4}
    again = Client().get_run(run.id)
    assert again.name == run.name and again.status == "completed"
    assert run.environment["python"].count(".") == 2
    assert run.spec.name == "summing"


def test_several_outputs_and_reused_steps() -> None:
    run = splitting(n=6)
    assert run.steps["split"].outputs["evens"].load() == [0, 2, 4]
    assert run.steps["sum_odds"].output().load() == 9.0
    assert run.steps["sum_evens"].output().load() == 6.0


def test_step_context_and_metadata_targets() -> None:
    seen: dict[str, Any] = {}

    @step
    def produce(k: int = 2) -> Annotated[list, "data"]:
        context = get_step_context()
        seen.update(
            run_id=context.run_id,
            step=context.step_name,
            params=context.parameters,
            outputs=context.output_names,
            attempt=context.attempt,
        )
        log_metadata({"rows": k}, artifact="data")
        log_metadata({"loss": 0.5})
        log_metadata({"loss": 0.25})
        return [1] * k

    @pipeline
    def p() -> None:
        produce()

    run = p()
    assert seen == {
        "run_id": run.id,
        "step": "produce",
        "params": {"k": 2},
        "outputs": ("data",),
        "attempt": 1,
    }
    data = run.steps["produce"].output("data")
    assert data.metadata == {"rows": 2, "length": 2}
    assert run.metadata == {"loss": 0.25}
    assert run.metadata_history("loss") == [0.5, 0.25]
    log_metadata({"reviewed": True}, run=run.name)
    assert run.refresh().metadata["reviewed"] is True
    log_metadata({"note": "ok"}, artifact_version=data.id)
    assert Client().get_artifact_version("data").metadata["note"] == "ok"


def test_metadata_errors() -> None:
    with pytest.raises(InvalidMetadataError, match="needs a target"):
        log_metadata({"a": 1})
    with pytest.raises(GristmillError, match="outside a running step"):
        get_step_context()

    @step
    def bad() -> int:
        log_metadata({"x": object()})
        return 1

    @step
    def wrong_output() -> int:
        log_metadata({"x": 1}, artifact="nope")
        return 1

    @pipeline
    def p1() -> None:
        bad()

    @pipeline
    def p2() -> None:
        wrong_output()

    with pytest.raises(RunFailedError, match="'x' = object is not JSON"):
        p1()
    with pytest.raises(RunFailedError, match="has no output 'nope'"):
        p2()


def test_logs_are_captured_per_step_and_still_shown(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # a program that configured logging keeps its level

    @step
    def chatty() -> int:
        print("to stdout")
        print("to stderr", file=sys.stderr)
        logging.getLogger("user.module").info("an info record")
        return 1

    @step(enable_logs=False)
    def quiet() -> int:
        print("not captured")
        return 2

    @pipeline
    def p() -> None:
        chatty()
        quiet()

    run = p()
    logs = run.steps["chatty"].logs()
    assert "to stdout" in logs and "to stderr" in logs
    assert "INFO user.module: an info record" in logs
    assert run.steps["quiet"].logs() == ""
    shown = capsys.readouterr()
    assert "to stdout" in shown.out and "not captured" in shown.out
    assert "to stderr" in shown.err
    assert not isinstance(sys.stdout, _Tee) and not isinstance(
        sys.stderr, _Tee
    )  # gone after the run


def test_info_logs_are_captured_when_logging_is_not_configured(tmp_path: Any) -> None:
    import subprocess

    script = tmp_path / "p.py"
    script.write_text(
        "import logging\n"
        "from gristmill import step, pipeline\n"
        "@step\n"
        "def s() -> int:\n"
        "    logging.getLogger('mine').info('hello %d', 7)\n"
        "    logging.getLogger('mine').warning('careful')\n"
        "    return 1\n"
        "@pipeline\n"
        "def p():\n"
        "    s()\n"
        "if __name__ == '__main__':\n"
        "    print(p().steps['s'].logs())\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert "INFO mine: hello 7" in out.stdout
    # shown as they happen, once each (tests/unit/test_step_console.py has the rest)
    shown = [line for line in out.stderr.splitlines() if "hello" in line or "careful" in line]
    assert shown == ["[s] INFO hello 7", "[s] WARNING careful"]


FAILURES: list[Any] = []


def remember_failure(exc: BaseException) -> None:
    FAILURES.append(exc)


def test_a_failing_step_fails_the_run_keeps_upstream_outputs_and_calls_the_hook() -> None:
    FAILURES.clear()
    successes: list[str] = []

    @step(on_success=lambda: successes.append(get_step_context().output_uris["output"]))
    def good() -> int:
        return 10

    @step(on_failure=remember_failure)
    def broken(x: int) -> int:
        print("about to fail")
        raise ValueError(f"bad value {x}")

    @step
    def after_broken(y: int) -> int:
        return y

    @step
    def independent() -> int:
        return 3

    @pipeline
    def p() -> None:
        after_broken(broken(good()))
        independent()

    with pytest.raises(
        RunFailedError, match="step 'broken' raised ValueError: bad value 10"
    ) as caught:
        p()
    run = caught.value.run
    assert run is not None
    assert isinstance(caught.value.__cause__, ValueError)
    statuses = {name: s.status for name, s in run.steps.items()}
    assert statuses == {
        "good": "completed",
        "broken": "failed",
        "after_broken": "stopped",
        "independent": "completed",
    }
    assert run.status == "failed"
    assert "ValueError: bad value 10" in (run.steps["broken"].error or "")
    assert "upstream step 'broken'" in (run.steps["after_broken"].error or "")
    assert run.steps["good"].output().load() == 10  # the finished step's output is kept
    assert len(FAILURES) == 1 and isinstance(FAILURES[0], ValueError)
    assert successes and successes[0].endswith(run.steps["good"].output().content_hash)
    logs = run.steps["broken"].logs()
    assert "about to fail" in logs and "Traceback" in logs


def test_retries_are_honoured() -> None:
    attempts: list[int] = []

    @step(retries={"count": 2, "delay": 0.001, "backoff": 2})
    def flaky() -> int:
        attempts.append(get_step_context().attempt)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return len(attempts)

    @step(retries=1)
    def hopeless() -> int:
        attempts.append(-1)
        raise RuntimeError("never works")

    @pipeline
    def p() -> None:
        flaky()

    @pipeline
    def q() -> None:
        hopeless()

    run = p()
    assert attempts == [1, 2, 3]
    assert run.steps["flaky"].attempts == 3
    assert run.steps["flaky"].output().load() == 3
    assert "failed on attempt 1 of 3" in run.steps["flaky"].logs()
    attempts.clear()
    with pytest.raises(RunFailedError) as caught:
        q()
    assert attempts == [-1, -1]
    assert caught.value.run is not None
    assert caught.value.run.steps["hopeless"].attempts == 2


def test_a_failing_hook_does_not_change_the_outcome(caplog: pytest.LogCaptureFixture) -> None:
    def bad_hook() -> None:
        raise RuntimeError("hook broke")

    @step(on_success=bad_hook)
    def fine() -> int:
        return 1

    @pipeline
    def p() -> None:
        fine()

    assert p().status == "completed"
    assert "the on_success hook of step 'fine' raised" in caplog.text


def test_hooks_by_import_path() -> None:
    FAILURES.clear()

    @step(on_failure="test_execution:remember_failure")
    def broken() -> int:
        raise KeyError("k")

    @pipeline
    def p() -> None:
        broken()

    sys.modules.setdefault("test_execution", sys.modules[__name__])
    with pytest.raises(RunFailedError):
        p()
    assert len(FAILURES) == 1


def test_wrong_number_of_returned_outputs() -> None:
    @step
    def two() -> tuple[int, int]:
        return 1  # type: ignore[return-value]

    @pipeline
    def p() -> None:
        two()

    with pytest.raises(RunFailedError, match=r"declares 2 outputs .* but returned a int"):
        p()


@pytest.mark.parametrize("orchestrator", ["local", "local_parallel"])
def test_keyboard_interrupt_stops_the_step_and_the_run(orchestrator: str) -> None:
    @step
    def interrupted() -> int:
        raise KeyboardInterrupt

    @step
    def later(x: int) -> int:
        return x

    @pipeline
    def p() -> None:
        later(interrupted())

    line = interrupted.func.__code__.co_firstlineno + 2
    with pytest.raises(KeyboardInterrupt) as caught:
        p.with_options(orchestrator=orchestrator)()
    run = Client().get_run("latest")
    assert str(caught.value) == (
        f"interrupted in step 'interrupted' (tests/unit/test_execution.py:{line}); "
        f"run {run.name} stopped"
    )
    assert caught.value.__suppress_context__  # no traceback of gristmill's frames chained
    assert run.status == "stopped"
    assert {n: (s.status, s.error) for n, s in run.steps.items()} == {
        "interrupted": ("stopped", "interrupted by the user"),
        "later": ("stopped", "the run was interrupted"),
    }


def test_default_run_names_do_not_meet_in_a_loop_of_runs() -> None:
    """Two runs of one pipeline in the same second whose ids start alike get distinct default
    names (a loop of hundreds of runs a second met a 6-digit suffix twice now and then)."""
    from gristmill.execution.plan import _run_name

    first = _run_name(None, "p", "abcdef" + "0" * 26)
    second = _run_name(None, "p", "abcdef" + "1" * 26)
    assert first != second
    assert first.startswith("p-") and first.endswith("-abcdef")


def test_run_name_template_and_tags() -> None:
    run = summing.with_options(run_name="nightly-{pipeline}-{id}", tags=["nightly"])()
    assert run.name.startswith("nightly-summing-")
    assert run.tags == ["nightly"]
    from gristmill.errors import ConfigError

    with pytest.raises(ConfigError, match="run name template"):
        summing.with_options(run_name="{nope}")()
