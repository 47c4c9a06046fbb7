"""The ``subprocess`` step operator: the step runs in a fresh Python process on this machine,
through the worker entry point (``python -m gristmill.execution step``), optionally with
another interpreter or virtual environment given by path. It proves on a laptop what a cluster
operator does: the step runs with its own interpreter and packages, the stores come from its
environment, and the step run records where it really ran."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gristmill.errors import ConfigError
from gristmill.step_operators.base import JobStatus, StepJob, StepOperator

# The last lines of a job's stderr given as the reason when it ends without recording the step.
STDERR_TAIL_LINES = 20
STDERR_TAIL_BYTES = 16_384


class SubprocessStepOperatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    python: str | None = Field(
        None,
        description="The interpreter that runs the step (another virtual environment's "
        "bin/python); default: the orchestrating process's own.",
    )

    @field_validator("python")
    @classmethod
    def _executable(cls, value: str | None) -> str | None:
        if value is not None:
            interpreter(value)
        return value


@dataclass
class _Job:
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]


class SubprocessStepOperator(StepOperator):
    flavor = "subprocess"
    config_model = "gristmill.step_operators.subprocess:SubprocessStepOperatorConfig"
    poll_seconds = 0.1

    def __init__(self, *, python: str | None = None) -> None:
        self.interpreter = None if python is None else interpreter(python)

    def python(self) -> str:
        return self.interpreter or sys.executable

    def _submit(self, job: StepJob) -> _Job:
        from gristmill.project import find_project

        environment = {
            **os.environ,
            **job.environment,
            "GRISTMILL_PROJECT": str(find_project().root),
            "PYTHONPATH": os.pathsep.join(code_path(isolated=self.interpreter is not None)),
        }
        if self.interpreter is not None:
            # The other environment's own: nothing of this one's activation leaks in.
            for variable in ("VIRTUAL_ENV", "PYTHONHOME", "CONDA_PREFIX"):
                environment.pop(variable, None)
        # stderr to a file, not a pipe: a chatty step cannot fill a pipe nobody reads. It lives
        # as long as the job (closed by _status or _cancel), so no ``with`` here.
        stderr = tempfile.TemporaryFile()  # noqa: SIM115
        process = subprocess.Popen(
            list(job.command),
            env=environment,
            stdin=subprocess.DEVNULL,
            stderr=stderr,
        )
        return _Job(process, stderr)

    def _status(self, handle: _Job) -> JobStatus:
        code = handle.process.poll()
        if code is None:
            return JobStatus("running")
        size = handle.stderr.seek(0, os.SEEK_END)
        handle.stderr.seek(max(0, size - STDERR_TAIL_BYTES))
        tail = handle.stderr.read().decode(errors="replace").strip().splitlines()
        handle.stderr.close()
        if code == 0:
            return JobStatus("succeeded")
        reason = f"its process ({self.python()}) exited with code {code}"
        if tail:
            reason += ": " + "\n".join(tail[-STDERR_TAIL_LINES:])
        return JobStatus("failed", reason)

    def _cancel(self, handle: _Job) -> None:
        if handle.process.poll() is None:
            handle.process.terminate()
            try:
                handle.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                handle.process.kill()
        handle.stderr.close()


def interpreter(python: str) -> str:
    """``python`` as an absolute path to an executable file; a ConfigError saying what to give
    otherwise."""
    path = Path(python).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ConfigError(
            f"step operator subprocess: python={python} is not an executable file; give the "
            "interpreter of the other environment, e.g. python=/path/to/venv/bin/python"
        )
    return str(path.absolute())  # not resolved: a venv's python is a symlink to the base one


def code_path(*, isolated: bool) -> list[str]:
    """The import path a job needs for the user's code to import as it does here. ``isolated``
    (another interpreter): without this environment's packages (its prefixes and what its
    ``.pth`` files add), which the other environment must bring itself."""
    entries = [p for p in sys.path if p and Path(p).is_dir()]
    if not isolated:
        return entries
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    added = _pth_entries()
    kept = []
    for entry in entries:
        resolved = Path(entry).resolve()
        if resolved in added or any(resolved.is_relative_to(p) for p in prefixes):
            continue
        kept.append(entry)
    return kept


def _pth_entries() -> set[Path]:
    """The folders this environment's ``.pth`` files put on ``sys.path`` (editable installs)."""
    found: set[Path] = set()
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    for folder in folders:
        for pth in sorted(Path(folder).glob("*.pth")) if Path(folder).is_dir() else ():
            try:
                lines = pth.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for raw in lines:
                line = raw.strip()
                if line and not line.startswith(("#", "import ", "import\t")):
                    found.add((Path(folder) / line).resolve())
    return found
