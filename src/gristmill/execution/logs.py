"""Capture each step's stdout, stderr and ``logging`` output while still showing it.

One tee per stream is installed while any step runs and routes writes to the buffer of the
step running in the current thread (a ContextVar), so parallel steps keep separate logs.

A step's ``logging`` records all go to its log; those at INFO and above also show on stderr
as ``[step] LEVEL message``, unless the program's own handlers show them (it configured
logging: then its configuration decides, and each record shows once).

What reaches the console (and so a CI log) is redacted as it passes, once this process
resolved a secret: a tail that may be the start of a secret value is held back until the next
write shows it is not, so a value split across writes is masked too. Stored logs are redacted
when saved. Until a secret is known the tee writes straight through.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from gristmill.execution.context import current_context

_buffer: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "gristmill_log", default=None
)
_lock = threading.Lock()
_active = 0
_handler: logging.Handler | None = None
_root_level: int | None = None


class _Tee(io.TextIOBase):
    """Writes to the original stream and, inside a step, to that step's log buffer."""

    def __init__(self, original: TextIO) -> None:
        self.original = original
        self._held = ""  # written, not shown yet: it may be the start of a secret value
        self._held_lock = threading.Lock()

    def write(self, text: str) -> int:
        buffer = _buffer.get()
        if buffer is not None:
            buffer.write(text)
        secrets = sys.modules.get("gristmill.stacks.secrets")
        if secrets is None or not secrets.any_known():
            return self.original.write(text)
        with self._held_lock:
            shown, self._held = secrets.redact_stream(self._held + text)
            if shown:
                self.original.write(shown)
        return len(text)

    def show(self, text: str) -> None:
        """Write ``text`` to the console only (not to the step's log), redacted as the
        stream's own writes are."""
        secrets = sys.modules.get("gristmill.stacks.secrets")
        if secrets is None or not secrets.any_known():
            self.original.write(text)
            return
        with self._held_lock:
            shown, self._held = secrets.redact_stream(self._held + text)
            if shown:
                self.original.write(shown)

    def release(self) -> None:
        """Show what is held back (the stream is being given back)."""
        with self._held_lock:
            held, self._held = self._held, ""
        if held:
            self.original.write(held)

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
    """Puts log records of the current step into its buffer, and shows them on the console
    where no handler of the program's does: a step's records at INFO and above as
    ``[step] LEVEL message``; other records at WARNING and above, as Python's last-resort
    handler would have."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            buffer = _buffer.get()
            if buffer is not None:
                buffer.write(text)
            context = current_context()
            if context is not None:
                if record.levelno >= logging.INFO and not self._shown_by_program(record):
                    _show(f"[{context.step_name}] {_CONSOLE_FORMAT.format(record)}\n")
            elif record.levelno >= logging.WARNING and not self._shown_by_program(record):
                _show(text)
        except Exception:
            self.handleError(record)

    def _shown_by_program(self, record: logging.LogRecord) -> bool:
        """Whether a handler other than this one gets the record (as ``Logger.callHandlers``
        walks the loggers): the program configured logging, and that decides what shows."""
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


_CONSOLE_FORMAT = logging.Formatter("%(levelname)s %(message)s")


def _show(text: str) -> None:
    """Write to the console's stderr (not to any step's log), redacted."""
    stream = sys.stderr
    if isinstance(stream, _Tee):
        stream.show(text)
    else:
        stream.write(_redact(text))


def _wrap_streams() -> None:
    # Also when already installed: a program (or a test runner) may have replaced the streams
    # since, and a step's output must still reach its log.
    if not isinstance(sys.stdout, _Tee):
        sys.stdout = _Tee(sys.stdout)
    if not isinstance(sys.stderr, _Tee):
        sys.stderr = _Tee(sys.stderr)


def _redact(text: str) -> str:
    secrets = sys.modules.get("gristmill.stacks.secrets")
    return secrets.redact(text) if secrets is not None else text


def install() -> None:
    """Route stdout, stderr and logging through the step tees (counted; see ``uninstall``)."""
    global _active, _handler, _root_level
    with _lock:
        _active += 1
        _wrap_streams()
        if _handler is not None:
            return
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
        # Only unwrap our own tees: a stream the program set since stays as it is.
        if isinstance(sys.stdout, _Tee):
            sys.stdout.release()
            sys.stdout = sys.stdout.original
        if isinstance(sys.stderr, _Tee):
            sys.stderr.release()
            sys.stderr = sys.stderr.original
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


class LiveLogs:
    """A running step's log buffer and how to write it where readers follow it."""

    __slots__ = ("buffer", "uri", "write", "written")

    def __init__(self, buffer: io.StringIO, uri: str, write: Callable[[str], None]) -> None:
        self.buffer = buffer
        self.uri = uri
        self.write = write
        self.written = -1  # characters written so far (-1: not even the empty file yet)

    def flush(self) -> None:
        text = self.buffer.getvalue()
        if len(text) != self.written:
            self.write(text)
            self.written = len(text)
