"""Capture each step's stdout, stderr and ``logging`` output while still showing it.

One tee per stream is installed while any step runs and routes writes to the buffer of the
step running in the current thread (a ContextVar), so parallel steps keep separate logs.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_buffer: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "gristmill_log", default=None
)
_lock = threading.Lock()
_active = 0
_saved: dict[str, TextIO] = {}
_handler: logging.Handler | None = None
_root_level: int | None = None


class _Tee(io.TextIOBase):
    """Writes to the original stream and, inside a step, to that step's log buffer."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buffer = _buffer.get()
        if buffer is not None:
            buffer.write(text)
        return self.original.write(text)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _StepLogHandler(logging.Handler):
    """Puts log records of the current step into its buffer. When the program configured no
    logging, it also shows warnings on stderr, as Python's last-resort handler would have."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            buffer = _buffer.get()
            if buffer is not None:
                buffer.write(text)
            root_handlers = logging.getLogger().handlers
            if record.levelno >= logging.WARNING and all(h is self for h in root_handlers):
                _saved["stderr"].write(text)
        except Exception:
            self.handleError(record)


def install() -> None:
    """Route stdout, stderr and logging through the step tees (counted; see ``uninstall``)."""
    global _active, _handler, _root_level
    with _lock:
        _active += 1
        if _active > 1:
            return
        _saved["stdout"], _saved["stderr"] = sys.stdout, sys.stderr
        sys.stdout = _Tee(sys.stdout)
        sys.stderr = _Tee(sys.stderr)
        _handler = _StepLogHandler()
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        unconfigured = not root.handlers
        root.addHandler(_handler)
        # With logging unconfigured, Python's default level (WARNING) would drop a step's
        # logging.info before any handler; a program that configured logging keeps its level.
        if unconfigured and root.level > logging.INFO:
            _root_level = root.level
            root.setLevel(logging.INFO)


def uninstall() -> None:
    """Undo one ``install``; the last one restores the streams."""
    global _active, _handler, _root_level
    with _lock:
        _active -= 1
        if _active > 0:
            return
        # Only undo our own tee: if the program replaced the streams meanwhile, leave theirs.
        if isinstance(sys.stdout, _Tee):
            sys.stdout = _saved["stdout"]
        if isinstance(sys.stderr, _Tee):
            sys.stderr = _saved["stderr"]
        root = logging.getLogger()
        if _handler is not None:
            root.removeHandler(_handler)
            _handler = None
        if _root_level is not None:
            root.setLevel(_root_level)
            _root_level = None


@contextmanager
def capture_logs(enabled: bool = True) -> Iterator[io.StringIO]:
    """Collect what the current step prints or logs into the yielded buffer."""
    buffer = io.StringIO()
    if not enabled:
        yield buffer
        return
    install()
    token = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(token)
        uninstall()
