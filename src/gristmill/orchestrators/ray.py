# ray.nodes() and ray.cluster_resources() carry no type hints.
# mypy: disable-error-code="no-untyped-call"
"""Each step a Ray task (the remote execution protocol's ``run_step`` in a Ray worker process),
on a local Ray started for the run when no address is given, or on a cluster (``ray://...``,
``auto``). Tasks carry only ids and return a small result: data goes through the artifact
store, never through Ray's object store. Step ``resources`` become the task's ``num_cpus``,
``num_gpus`` and ``memory``; a step no node can hold is refused before anything runs."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.orchestrators.base import Orchestrator
from gristmill.orchestrators.tasks import (
    run_step_task,
    run_tasks,
    warm_worker,
    worker_environment_variables,
)


class RayOrchestrator(Orchestrator):
    flavor = "ray"
    config_model = "gristmill.orchestrators.configs:RayOrchestratorConfig"
    requires = ("ray",)
    extra = "ray"
    uses_resources = True

    def __init__(
        self, *, address: str | None = None, num_cpus: int | None = None, **config: Any
    ) -> None:
        super().__init__(**config)
        self.address = address
        self.num_cpus = num_cpus

    def _run(self, run: RunContext) -> None:
        import ray

        started, env = self._connect(run)
        try:
            _check_resources(run)
            tasks = _RayTasks(run, env)
            tasks.warm()
            run_tasks(run, tasks)
        finally:
            if started:
                ray.shutdown()

    def _connect(self, run: RunContext) -> tuple[bool, dict[str, str] | None]:
        """Start (or join) Ray. Returns whether this run started it (and stops it after),
        and the variables each task must set (None when Ray's workers already have them)."""
        import ray

        quiet = {"configure_logging": False, "logging_level": logging.WARNING}
        if ray.is_initialized():
            # This process joined a Ray before (a notebook, a test): use it as it is. Without
            # an address it is this machine's, and the tasks carry the stores' variables.
            return False, None if self.address else worker_environment_variables(run)
        if self.address:
            try:
                ray.init(address=self.address, **quiet)  # type: ignore[arg-type]
            except (ConnectionError, TimeoutError, RuntimeError) as exc:
                raise ConfigError(
                    f"ray: cannot reach the cluster at {self.address}: {exc}"
                ) from exc
            return True, None
        # A Ray of this machine for this run; its workers find the stores in their
        # environment. Steps' output goes to their logs, not to this console.
        ray.init(
            num_cpus=self.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": worker_environment_variables(run)},
            **quiet,  # type: ignore[arg-type]
        )
        return True, None


def ray_options(resources: Any) -> dict[str, float]:
    """A step's ``Resources`` as Ray task options (one CPU when it asks for nothing, Ray's
    own default)."""
    options: dict[str, float] = {"num_cpus": 1.0}
    if resources is None:
        return options
    if resources.cpu:
        options["num_cpus"] = float(resources.cpu)
    if resources.gpu:
        options["num_gpus"] = float(resources.gpu)
    if resources.memory is not None:
        options["memory"] = float(resources.memory_bytes)
    return options


# Workers made ready before the first step; on a large cluster the others warm with their
# first step.
MAX_WARM_WORKERS = 32
# Ray's names for the resources of a node, by task option.
_NODE_RESOURCES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


def _check_resources(run: RunContext) -> None:
    """A step asking for more than any node offers would wait for ever (Ray only warns that
    it is infeasible): say so now. Nodes an autoscaler would add later are not counted."""
    import ray

    offered = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    for step_id in run.plan.order:
        wanted = {
            _NODE_RESOURCES[option]: amount
            for option, amount in ray_options(run.plan.steps[step_id].options.resources).items()
        }
        if not any(
            all(node.get(name, 0) >= amount for name, amount in wanted.items()) for node in offered
        ):
            names = _NODE_RESOURCES.values()
            shown = [{k: v for k, v in node.items() if k in names} for node in offered]
            raise ConfigError(
                f"step '{step_id}' needs {wanted} but no Ray node offers that (nodes offer "
                f"{shown or 'nothing: no nodes'}); start nodes with e.g. `ray start "
                "--num-cpus 8 --num-gpus 1 ...` or lower the step's resources"
            )


class _RayTasks:
    """Steps as Ray tasks (the ``TaskEngine`` of ``run_tasks``)."""

    def __init__(self, run: RunContext, env: dict[str, str] | None) -> None:
        import ray

        self._plan = run.plan
        # Ray's own retries are off (``max_retries=0``): the step's retries decide.
        self._options: dict[str, Any] = {"max_retries": 0, "retry_exceptions": False}
        if env is not None:
            self._options["runtime_env"] = {"env_vars": env}
        self._task = ray.remote(run_step_task)
        self._pending: list[Any] = []

    def warm(self) -> None:
        """The first task of each worker process pays its imports; pay them now, at once, on
        a worker per CPU (up to ``MAX_WARM_WORKERS``), as the Dask orchestrator does on
        every worker."""
        import ray

        count = min(int(ray.cluster_resources().get("CPU", 1)), MAX_WARM_WORKERS)
        warm = ray.remote(warm_worker).options(num_cpus=1, **self._options)
        try:
            ray.get([warm.remote() for _ in range(max(count, 1))])
        except ray.exceptions.RayTaskError as exc:  # e.g. a worker without the stores' settings
            raise exc.cause from exc

    def submit(self, step_id: str, attempt: int) -> Hashable:
        options = ray_options(self._plan.steps[step_id].options.resources)
        ref = self._task.options(
            name=f"gristmill-{step_id}-{attempt}", **options, **self._options
        ).remote(self._plan.run_id, step_id)
        self._pending.append(ref)
        return ref

    def next_finished(self) -> Hashable:
        import ray

        ready, self._pending = ray.wait(self._pending, num_returns=1)
        return ready[0]

    def outcome(self, task: Hashable) -> tuple[str, str | None]:
        import ray

        status, error = ray.get(task)  # type: ignore[call-overload]
        return status, error

    def lost_reason(self, error: Exception) -> str:
        from ray.exceptions import OutOfMemoryError, RayTaskError

        if isinstance(error, RayTaskError):  # the task raised: say what, not Ray's wrapping
            cause = error.cause
            return f"the Ray task running it failed: {type(cause).__name__}: {cause}"
        if isinstance(error, OutOfMemoryError):
            return (
                "Ray's memory monitor killed the worker running it (its node ran low on "
                "memory); give the step resources={'memory': ...} so that Ray places it on a "
                f"node that has it: {error}"
            )
        # WorkerCrashedError (the process was killed), NodeDiedError, ...: Ray does not run
        # the task again (max_retries=0); the step's retries decide.
        return f"the Ray worker running it died: {type(error).__name__}: {error}"

    def cancel(self, task: Hashable) -> None:
        import ray

        ray.cancel(task, force=True)
