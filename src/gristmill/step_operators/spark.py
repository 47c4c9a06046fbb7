"""The ``spark`` step operator: the step runs with a ``SparkSession`` ready, ``local[*]`` by
default or on a configured master, so it can take and return Spark DataFrames.

It runs the step in this process, as the Spark driver: what moves elsewhere is the work on
the data, which Spark's executors do (threads of a local JVM, or a cluster's). Starting a
separate Python process per step would start a second JVM for every step and gain nothing a
driver needs. The session is created on the first Spark step and kept for the process (the
next Spark step reuses it; a JVM takes seconds to start); ``SparkSession.builder.getOrCreate()``
in the step returns it, and so does ``SparkSession.getActiveSession()`` in the thread that ran
the first Spark step. The step run records where it ran (host, pid, Python) and the Spark
master, version and application id.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import ConfigError
from gristmill.step_operators.base import InProcessStepOperator

if TYPE_CHECKING:
    from gristmill.execution.run import RunContext

DEFAULT_MASTER = "local[*]"
APP_NAME = "gristmill"


class SparkStepOperatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    master: str | None = Field(
        None,
        description="The Spark master (local[4], spark://host:7077, yarn, k8s://...); default: "
        "local[*], or the master of a session already running in the process.",
    )
    config: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description='Spark configuration for the session, e.g. {"spark.executor.memory": "4g"}.',
    )


class SparkStepOperator(InProcessStepOperator):
    flavor = "spark"
    config_model = "gristmill.step_operators.spark:SparkStepOperatorConfig"
    requires = ("pyspark",)
    extra = "spark"

    def __init__(self, *, master: str | None = None, config: dict[str, Any] | None = None) -> None:
        self.master = master
        self.config = dict(config or {})

    def session(self) -> Any:
        """The process's SparkSession: created with this operator's master and configuration
        when there is none; an existing one is used when its master is the one asked for."""
        from pyspark.sql import SparkSession

        running = SparkSession.getActiveSession()
        if running is None:
            builder = SparkSession.builder.appName(APP_NAME).master(self.master or DEFAULT_MASTER)
            for key, value in self.config.items():
                builder = builder.config(key, _spark_value(value))
            return builder.getOrCreate()
        master = running.sparkContext.master
        if self.master is not None and master != self.master:
            raise ConfigError(
                f"step operator spark: a Spark session on master '{master}' is already running "
                f"in this process and Spark allows one per process, so master '{self.master}' "
                "cannot be used; stop that session first, or set the operator's master to it"
            )
        return running

    @contextlib.contextmanager
    def _around(self, run: RunContext, step_id: str) -> Iterator[Any]:
        from gristmill.execution.worker import worker_environment

        session = self.session()
        context = session.sparkContext
        environment = worker_environment()
        environment["spark"] = {
            "master": context.master,
            "version": session.version,
            "app_id": context.applicationId,
        }
        run.store.claim_step_run(
            run.plan.steps[step_id].step_run_id,
            at=time.time(),
            host=environment["host"],
            pid=environment["pid"],
            environment=environment,
        )
        yield session


def _spark_value(value: str | int | float | bool) -> str:
    """Spark's configuration is strings; ``true``/``false`` as Spark spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
