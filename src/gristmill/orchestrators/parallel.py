"""A DAG-aware thread pool: each step starts as soon as everything it depends on succeeded.

Threads suit steps that wait (I/O, subprocesses, native code that releases the GIL such as
numpy, pandas, scikit-learn and most ML libraries); pure-Python CPU-bound steps share one core.

Ctrl-C reaches the main thread only: Python cannot interrupt a step running in another
thread. Such steps are recorded ``stopped`` (with the line their code was at) when the run
ends, and their threads are daemons, so they do not keep the process alive.
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any

from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.orchestrators.base import Orchestrator

DEFAULT_MAX_WORKERS = 32


class ParallelOrchestrator(Orchestrator):
    flavor = "local_parallel"
    config_model = "gristmill.orchestrators.configs:ParallelOrchestratorConfig"
    settings_optional = True
    requires = ()  # the standard library only

    def __init__(self, *, max_workers: int = DEFAULT_MAX_WORKERS, **config: Any) -> None:
        super().__init__(**config)
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise ConfigError(
                f"local_parallel: max_workers must be a positive int, got {max_workers!r}"
            )
        self.max_workers = max_workers

    def _run(self, run: RunContext) -> None:
        plan = run.plan
        waiting = {step_id: set(plan.upstream(step_id)) for step_id in plan.order}
        children: dict[str, list[str]] = {step_id: [] for step_id in plan.order}
        for step_id, ups in waiting.items():
            for up in ups:
                children[up].append(step_id)
        ready = [s for s in plan.order if not waiting[s]]
        workers = _Workers(run)
        try:
            while ready or workers.running:
                while ready and len(workers.running) < self.max_workers:
                    step_id = ready.pop(0)
                    blocker = run.blocked_by(step_id)
                    if blocker is not None:
                        run.skip([step_id], f"upstream step '{blocker}' did not succeed")
                        ready.extend(self._release(step_id, waiting, children))
                        continue
                    if not ready and not workers.running:
                        # Nothing could run beside it (a chain): no hand-off to a worker thread.
                        run.launch(step_id)
                        ready.extend(self._release(step_id, waiting, children))
                        continue
                    workers.submit(step_id)
                if workers.running:
                    # A launcher bug surfaces here; step failures are outcomes.
                    finished = workers.next_finished()
                    ready.extend(self._release(finished, waiting, children))
        except KeyboardInterrupt:
            for step_id, frames in workers.where_running():
                run.interrupted(step_id, frames)
            raise
        finally:
            workers.close()

    @staticmethod
    def _release(
        step_id: str, waiting: dict[str, set[str]], children: dict[str, list[str]]
    ) -> list[str]:
        """Children of a finished (or skipped) step that have nothing left to wait for."""
        released = []
        for child in children[step_id]:
            waiting[child].discard(step_id)
            if not waiting[child]:
                released.append(child)
        return released


class _Workers:
    """Daemon threads that launch steps, started as needed (one per step running at once)
    and reused. ``running``: step id → the id of the thread running it (None until taken)."""

    def __init__(self, run: RunContext) -> None:
        self._run = run
        self._tasks: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._finished: queue.SimpleQueue[tuple[str, BaseException | None]] = queue.SimpleQueue()
        self._threads = 0
        self._closed = False
        self.running: dict[str, int | None] = {}

    def submit(self, step_id: str) -> None:
        self.running[step_id] = None
        if self._threads < len(self.running):
            self._threads += 1
            threading.Thread(
                target=self._work, name=f"gristmill-step-{self._threads}", daemon=True
            ).start()
        self._tasks.put(step_id)

    def next_finished(self) -> str:
        """Wait for a step to finish; re-raise what its launch raised (a launcher bug, or a
        KeyboardInterrupt the step raised itself)."""
        step_id, error = self._finished.get()
        del self.running[step_id]
        if error is not None:
            raise error
        return step_id

    def where_running(self) -> Iterator[tuple[str, list[tuple[FrameType, int]]]]:
        """Each step a thread is running, with that thread's frames now (outermost first).
        Steps still queued are not among them: they never started."""
        frames = sys._current_frames()
        for step_id, ident in list(self.running.items()):
            if ident is not None:
                frame = frames.get(ident)
                yield step_id, list(reversed(list(traceback.walk_stack(frame)))) if frame else []

    def close(self) -> None:
        """Let idle threads end, and drop steps still queued (the run was interrupted); busy
        threads end after their step."""
        self._closed = True
        for _ in range(self._threads):
            self._tasks.put(None)

    def _work(self) -> None:
        while (step_id := self._tasks.get()) is not None and not self._closed:
            self.running[step_id] = threading.get_ident()
            try:
                self._run.launch(step_id)
            except BaseException as exc:
                self._finished.put((step_id, exc))
            else:
                self._finished.put((step_id, None))
