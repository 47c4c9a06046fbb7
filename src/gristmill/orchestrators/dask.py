# distributed ships no type hints for its constructors and futures.
# mypy: disable-error-code="no-untyped-call"
"""Each step a task on a Dask ``distributed`` cluster, in worker processes (a ``LocalCluster``
of this machine's cores when no address is given). Tasks carry only ids and return a small
result: data goes through the artifact store, never through the scheduler. Step ``resources``
become Dask worker resources (``CPU``, ``MEMORY`` in bytes, ``GPU``).

A worker whose process dies under a step (killed, out of memory) fails that step, or runs it
again when the step has retries left; what finished before is kept."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.orchestrators.base import Orchestrator

if TYPE_CHECKING:
    from distributed import Client, Future

logger = logging.getLogger("gristmill")


class DaskOrchestrator(Orchestrator):
    flavor = "dask"
    config_model = "gristmill.orchestrators.configs:DaskOrchestratorConfig"
    requires = ("distributed",)
    extra = "dask"
    uses_resources = True

    def __init__(
        self,
        *,
        address: str | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        **config: Any,
    ) -> None:
        super().__init__(**config)
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker

    def _run(self, run: RunContext) -> None:
        client, close = self._connect(run)
        try:
            _check_resources(client, run)
            self._schedule(client, run)
        finally:
            close()

    def _schedule(self, client: Client, run: RunContext) -> None:
        from distributed import as_completed

        plan = run.plan
        waiting = {step_id: set(plan.upstream(step_id)) for step_id in plan.order}
        children: dict[str, list[str]] = {step_id: [] for step_id in plan.order}
        for step_id, ups in waiting.items():
            for up in ups:
                children[up].append(step_id)
        attempts: dict[str, int] = {}
        running: dict[Future[Any], str] = {}
        futures = as_completed()

        def submit(step_id: str) -> None:
            blocker = run.blocked_by(step_id)
            if blocker is not None:
                run.skip([step_id], f"upstream step '{blocker}' did not succeed")
                release(step_id)
                return
            attempts[step_id] = attempts.get(step_id, 0) + 1
            for listener in run.listeners:
                listener.step_started(step_id=step_id)
            future = client.submit(
                _run_step,
                plan.run_id,
                step_id,
                key=f"gristmill-{step_id}-{plan.run_id[:12]}-{attempts[step_id]}",
                pure=False,
                resources=dask_resources(plan.steps[step_id].options.resources),
            )
            running[future] = step_id
            futures.add(future)

        def release(step_id: str) -> None:
            for child in children[step_id]:
                waiting[child].discard(step_id)
                if not waiting[child]:
                    submit(child)

        try:
            for step_id in plan.order:
                if not waiting[step_id]:
                    submit(step_id)
            for future in futures:
                step_id = running.pop(future)
                try:
                    status, error = future.result()
                except Exception as exc:  # the worker died (KilledWorker) or was lost
                    reason = f"the Dask worker running it died: {type(exc).__name__}: {exc}"
                    if attempts[step_id] <= plan.steps[step_id].retries.count:
                        logger.warning("step '%s': %s; running it again", step_id, reason)
                        submit(step_id)
                        continue
                    run.lost(step_id, reason, attempts=attempts[step_id])
                else:
                    run.launched_elsewhere(step_id, status, error)
                release(step_id)
        except KeyboardInterrupt:
            for future, step_id in running.items():
                future.cancel()
                run.interrupted(step_id)
            raise

    def _connect(self, run: RunContext) -> tuple[Client, Any]:
        from distributed import Client

        if self.address:
            try:
                client = Client(self.address, timeout=30)
            except OSError as exc:
                raise ConfigError(
                    f"dask: cannot reach the scheduler at {self.address}: {exc}"
                ) from exc
            return client, client.close

        import dask
        from distributed import LocalCluster
        from distributed.system import MEMORY_LIMIT

        n_workers = self.n_workers or os.cpu_count() or 1

        # The scheduler lives in this process: a worker lost under a step is reported at once
        # (the step's retries decide what happens), not retried by Dask behind its back.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                dashboard_address=None,
                env=worker_environment_variables(run),
                resources={"CPU": self.threads_per_worker, "MEMORY": MEMORY_LIMIT // n_workers},
            )
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()

        return client, close


def _run_step(run_id: str, step_id: str) -> tuple[str, str | None]:
    """The task: one step in this worker process (module-level, so workers import it)."""
    from gristmill.execution.worker import run_step

    result = run_step(run_id, step_id)
    return result.status, result.error


def dask_resources(resources: Any) -> dict[str, float] | None:
    """A step's ``Resources`` as Dask worker resources; None when it asks for nothing."""
    if resources is None:
        return None
    wanted: dict[str, float] = {}
    if resources.cpu:
        wanted["CPU"] = float(resources.cpu)
    if resources.memory is not None:
        wanted["MEMORY"] = float(resources.memory_bytes)
    if resources.gpu:
        wanted["GPU"] = float(resources.gpu)
    return wanted or None


def _check_resources(client: Client, run: RunContext) -> None:
    """A step asking for more than any worker offers would wait for ever: say so now."""
    offered = [
        worker.get("resources", {}) for worker in client.scheduler_info()["workers"].values()
    ]
    for step_id in run.plan.order:
        wanted = dask_resources(run.plan.steps[step_id].options.resources) or {}
        if wanted and not any(
            all(worker.get(name, 0) >= amount for name, amount in wanted.items())
            for worker in offered
        ):
            raise ConfigError(
                f"step '{step_id}' needs {wanted} but no Dask worker offers that (workers "
                f"offer {offered or 'nothing: no workers'}); start workers with e.g. "
                "`dask worker ... --resources 'CPU=4 MEMORY=8e9 GPU=1'` or lower the step's "
                "resources"
            )


def worker_environment_variables(run: RunContext) -> dict[str, str]:
    """What the workers this process starts need to find the stores and the user's code:
    set in their environment (never on a command line, never logged)."""
    from gristmill.project import find_project

    env = {
        "GRISTMILL_STORE_URL": run.store.url,
        "GRISTMILL_PROJECT": str(find_project().root),
        # The user's code imports in the workers as it does here.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir()),
    }
    key = os.environ.get("GRISTMILL_SECRETS_KEY")
    if key:
        env["GRISTMILL_SECRETS_KEY"] = key
    return env
