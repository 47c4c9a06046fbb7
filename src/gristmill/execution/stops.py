"""Stop requests (``gristmill runs stop``, ``Run.stop()``) honoured where a run's code runs:
a ``StopWatch`` reads the run's status now and then in a daemon thread and, once the run is
``stopping`` (or ``stopped``), interrupts the thread it watches with a KeyboardInterrupt, as
Ctrl-C would. No store write, and nothing per step: the orchestrating process of a blocking
run watches its run once a second, a worker (``python -m gristmill.execution step``, a Dask
or Ray task) watches the run of the step it runs. Here, below the orchestrators, so that the
worker can use it too."""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gristmill.store import Status

if TYPE_CHECKING:
    from gristmill.store import MetadataStore


class Ticker(Protocol):
    """A thread that calls ``poll`` every ``seconds`` until it returns False."""

    def every(self, seconds: float, poll: Callable[[], bool]) -> None: ...


# How often a watch reads the run's status. Runs shorter than this are never read.
STOP_POLL_SECONDS = 1.0
_STOP_STATUSES = frozenset({Status.STOPPING, Status.STOPPED})


def stop_requested(store: MetadataStore, run_id: str) -> bool:
    """Whether the run was asked to stop (or ended meanwhile: nothing more of it may start)."""
    status = store.get_run(run_id).status
    return status == Status.STOPPING or status in Status.FINISHED


class StopWatch:
    """Watches run ``run_id`` for a stop request while armed, from ``start`` to ``disarm``,
    and interrupts the thread that started it once when one comes.

    The main thread gets a real SIGINT (so a ``sleep`` or a wait is cut short) when Python's
    own Ctrl-C handler is installed; any other thread (a Dask worker's, a server's) gets the
    KeyboardInterrupt when it next runs Python code: a step inside one long native call stops
    when the call returns."""

    def __init__(
        self, store: MetadataStore, run_id: str, *, every: float = STOP_POLL_SECONDS
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._every = every
        self._target = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = True
        self._done = threading.Event()
        self.fired = False

    def start(self, ticker: Ticker | None = None) -> StopWatch:
        """Watch from ``ticker``'s thread (a run's monitor, which already wakes up every
        moment: no thread more per run), or from a thread of its own."""
        if ticker is not None:
            ticker.every(self._every, self.poll)
        else:
            threading.Thread(
                target=self._loop, name=f"gristmill-stop-watch-{self._run_id[:8]}", daemon=True
            ).start()
        return self

    def disarm(self) -> bool:
        """Stop watching (called by the watched thread); returns whether it fired. An
        interruption sent but not yet raised is withdrawn where it can be (other threads)."""
        with self._lock:
            self._armed = False
            self._done.set()
            if self.fired and not self._by_signal():
                _async_raise(self._target, None)
            return self.fired

    def absorb(self) -> None:
        """After ``disarm`` returned True outside any step: take the SIGINT sent to the main
        thread, so that it does not surface later in the program."""
        if not self._by_signal():
            return
        try:
            for _ in range(200):  # the handler runs at once; this only gives it the chance
                self._done.wait(0.005)
        except KeyboardInterrupt:
            pass

    def _by_signal(self) -> bool:
        return (
            self._target == threading.main_thread().ident
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )

    def _loop(self) -> None:
        while not self._done.wait(self._every) and self.poll():
            pass

    def poll(self) -> bool:
        """Read the run's status once and interrupt the watched thread if it was asked to
        stop; whether to keep watching."""
        if self._done.is_set():
            return False
        try:
            # ``stopped``: the run was ended by `runs stop` while this step still ran.
            requested = self._store.get_run(self._run_id).status in _STOP_STATUSES
        except Exception:  # a store that fails now may answer next time
            return True
        if not requested:
            return True
        with self._lock:
            if self._armed and not self.fired:
                self.fired = True
                if self._by_signal():
                    signal.pthread_kill(self._target, signal.SIGINT)
                else:
                    _async_raise(self._target, KeyboardInterrupt)
        return False


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in another thread when it next runs Python code (None: withdraw one
    raised this way and not yet delivered)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )
