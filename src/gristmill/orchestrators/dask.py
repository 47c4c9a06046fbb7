# distributed ships no type hints for its constructors and futures.
# mypy: disable-error-code="no-untyped-call"
"""Each step a task on a Dask ``distributed`` cluster, in worker processes (a ``LocalCluster``
of this machine's cores when no address is given). Tasks carry only ids and return a small
result: data goes through the artifact store, never through the scheduler. Step ``resources``
become Dask worker resources (``CPU``, ``MEMORY`` in bytes, ``GPU``).

A worker whose process dies under a step (killed, out of memory) fails that step, or runs it
again when the step has retries left; what finished before is kept.

With ``wait: false`` (an external cluster only) the run is handed to the cluster and the call
returns at once: every step a task whose dependencies are its upstream steps' tasks, and a
last task that finishes the run, all kept by the scheduler after this client leaves
(``fire_and_forget``). ``gristmill runs wait`` follows the run; ``gristmill runs stop``
cancels its tasks on the scheduler."""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.orchestrators.base import Orchestrator, Stoppable, Submitting
from gristmill.orchestrators.tasks import (
    finish_submitted_run,
    run_step_task,
    run_submitted_step,
    run_tasks,
    warm_worker,
    worker_environment_variables,
)

if TYPE_CHECKING:
    from distributed import Client, Future

    from gristmill.store import RunRecord


class DaskOrchestrator(Submitting, Stoppable, Orchestrator):
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
        wait: bool = True,
        **config: Any,
    ) -> None:
        super().__init__(**config)
        if not wait and not address:
            raise ConfigError(
                "dask: wait=false hands runs to an external cluster, and no address is set "
                "(a LocalCluster ends with the process that started it): set "
                "address=tcp://HOST:8786, or leave wait at true"
            )
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.wait = wait

    @property
    def submits(self) -> bool:
        # wait=true: this process drives the run (worker losses retried per step);
        # wait=false: the scheduler does, and this process returns at once.
        return not self.wait

    def _submit(self, run: RunContext) -> None:
        from distributed import fire_and_forget

        client, close = self._connect(run)
        try:
            _check_resources(client, run)
            plan = run.plan
            futures: dict[str, Future[Any]] = {}
            for step_id in plan.order:
                upstream = sorted(plan.upstream(step_id))
                futures[step_id] = client.submit(
                    run_submitted_step,
                    plan.run_id,
                    step_id,
                    upstream,
                    *(futures[u] for u in upstream),
                    key=submitted_key(plan.run_id, step_id),
                    pure=False,
                    resources=dask_resources(plan.steps[step_id].options.resources),
                )
            finish = client.submit(
                finish_submitted_run,
                plan.run_id,
                *futures.values(),
                key=submitted_key(plan.run_id, None),
                pure=False,
            )
            fire_and_forget([*futures.values(), finish])
        finally:
            close()

    def _stop(self, run: RunRecord, *, steps: Sequence[str] = ()) -> None:
        from distributed import Client, Future

        if not self.address:
            return  # a LocalCluster's run ended with its process
        try:
            client = Client(self.address, timeout=30)
        except OSError as exc:
            raise ConfigError(f"dask: cannot reach the scheduler at {self.address}: {exc}") from exc
        try:
            keys = [submitted_key(run.id, None), *(submitted_key(run.id, s) for s in steps)]
            # Forced: the tasks are wanted by the scheduler's fire-and-forget, not by us.
            # Tasks waiting go; a step already running goes on in its worker until the stop
            # request (read by its StopWatch) interrupts it.
            client.cancel([Future(key, client) for key in keys], force=True)
        finally:
            client.close()

    def _run(self, run: RunContext) -> None:
        client, close = self._connect(run)
        try:
            _check_resources(client, run)
            # Every worker imports the launcher and opens the stores now, all at once.
            client.run(warm_worker)
            run_tasks(run, _DaskTasks(client, run))
        finally:
            close()

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


def submitted_key(run_id: str, step_id: str | None) -> str:
    """The scheduler's key of a handed-over run's step task (None: its finishing task)."""
    return f"gristmill-step-{run_id}-{step_id}" if step_id else f"gristmill-finish-{run_id}"


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


class _DaskTasks:
    """Steps as tasks on a Dask client (the ``TaskEngine`` of ``run_tasks``)."""

    def __init__(self, client: Client, run: RunContext) -> None:
        from distributed import as_completed

        self._client = client
        self._plan = run.plan
        self._finished = as_completed()

    def submit(self, step_id: str, attempt: int) -> Hashable:
        future: Future[Any] = self._client.submit(
            run_step_task,
            self._plan.run_id,
            step_id,
            key=f"gristmill-{step_id}-{self._plan.run_id[:12]}-{attempt}",
            pure=False,
            resources=dask_resources(self._plan.steps[step_id].options.resources),
        )
        self._finished.add(future)
        return future

    def next_finished(self) -> Hashable:
        return next(self._finished)  # type: ignore[no-any-return]

    def outcome(self, task: Hashable) -> tuple[str, str | None]:
        status, error = task.result()  # type: ignore[attr-defined]
        return status, error

    def lost_reason(self, error: Exception) -> str:
        return f"the Dask worker running it died: {type(error).__name__}: {error}"

    def cancel(self, task: Hashable) -> None:
        task.cancel()  # type: ignore[attr-defined]
