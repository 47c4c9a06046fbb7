"""A step's `logging` on the console: INFO and above as `[step] LEVEL message`, redacted, once
per record whatever the program configured; DEBUG only where the program asks for it; every
record the step's loggers emit in its stored log. Run as programs (`python pipeline.py`):
pytest's own logging handlers would count as the program's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gristmill.project import Project

SECRET = "s3cr3t-value-123"

STEP = f"""\
import logging
import sys

from gristmill import pipeline, step
from gristmill.stacks import secrets

secrets.remember({SECRET!r})  # as if a component's settings had resolved it


@step
def chatty() -> int:
    mine = logging.getLogger("mine")
    mine.info("hello %d", 7)
    mine.warning("careful")
    mine.debug("not emitted")  # 'mine' is at INFO
    logging.getLogger("verbose").debug("fine detail")  # 'verbose' is at DEBUG
    mine.info("token {SECRET} here")
    return 1


@pipeline
def p() -> None:
    chatty()
"""


def _run_program(folder: Path, setup: str) -> tuple[str, str]:
    script = folder / "pipeline.py"
    script.write_text(
        STEP
        + "\n\nif __name__ == '__main__':\n"
        + "".join(f"    {line}\n" for line in setup.splitlines())
        + "    logging.getLogger('verbose').setLevel(logging.DEBUG)\n"
        + "    print(p().steps['chatty'].logs())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def _stored_log_has_every_record(stored: str) -> None:
    assert "INFO mine: hello 7" in stored
    assert "WARNING mine: careful" in stored
    assert "DEBUG verbose: fine detail" in stored  # stored, whatever the console shows
    assert "not emitted" not in stored
    assert "token *** here" in stored and SECRET not in stored


def test_without_logging_configured_info_and_up_show_with_the_step_name(project: Project) -> None:
    folder = project.root
    stored, console = _run_program(folder, "pass")
    shown = [line for line in console.splitlines() if line.startswith("[chatty]")]
    assert shown == [
        "[chatty] INFO hello 7",
        "[chatty] WARNING careful",
        "[chatty] INFO token *** here",
    ]
    assert "fine detail" not in console  # DEBUG stays off the console
    assert SECRET not in console
    _stored_log_has_every_record(stored)


def test_a_program_that_configured_logging_sees_each_record_once(project: Project) -> None:
    folder = project.root
    stored, console = _run_program(folder, "logging.basicConfig(level=logging.INFO)")
    assert "[chatty]" not in console  # the program's handler shows them, in its format
    assert console.count("hello 7") == 1 and "INFO:mine:hello 7" in console
    assert console.count("careful") == 1
    # its own configuration: DEBUG of a logger set to DEBUG reaches its handler
    assert "DEBUG:verbose:fine detail" in console
    _stored_log_has_every_record(stored)


def test_a_handler_on_the_steps_own_logger_counts_as_configured(project: Project) -> None:
    folder = project.root
    stored, console = _run_program(
        folder,
        "handler = logging.StreamHandler(sys.stderr)\n"
        "handler.setFormatter(logging.Formatter('mine says %(message)s'))\n"
        "logging.getLogger('mine').addHandler(handler)",
    )
    assert console.count("hello 7") == 1 and "mine says hello 7" in console
    assert "[chatty] INFO hello" not in console
    _stored_log_has_every_record(stored)
