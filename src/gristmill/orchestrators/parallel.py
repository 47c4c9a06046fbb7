"""A DAG-aware thread pool: each step starts as soon as everything it depends on succeeded.

Threads suit steps that wait (I/O, subprocesses, native code that releases the GIL such as
numpy, pandas, scikit-learn and most ML libraries); pure-Python CPU-bound steps share one core.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.orchestrators.base import Orchestrator

DEFAULT_MAX_WORKERS = 32


class ParallelOrchestrator(Orchestrator):
    flavor = "local_parallel"
    config_model = "gristmill.orchestrators.configs:ParallelOrchestratorConfig"
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
        with futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix="gristmill-step"
        ) as pool:
            running: dict[futures.Future[Any], str] = {}
            while ready or running:
                while ready:
                    step_id = ready.pop(0)
                    blocker = run.blocked_by(step_id)
                    if blocker is not None:
                        run.skip([step_id], f"upstream step '{blocker}' did not succeed")
                        ready.extend(self._release(step_id, waiting, children))
                        continue
                    if not ready and not running:
                        # Nothing could run beside it (a chain): no hand-off to a worker thread.
                        run.launch(step_id)
                        ready.extend(self._release(step_id, waiting, children))
                        continue
                    running[pool.submit(run.launch, step_id)] = step_id
                if not running:
                    continue
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    step_id = running.pop(future)
                    future.result()  # a launcher bug surfaces here; step failures are outcomes
                    ready.extend(self._release(step_id, waiting, children))

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
