"""Settings of the orchestrator flavors (pydantic; imported only to validate settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ParallelOrchestratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # strict: "4" or true is a mistake in code, not a number to coerce.
    max_workers: int = Field(32, ge=1, strict=True, description="Steps running at once.")


class DaskOrchestratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, description="The scheduler (tcp://host:8786); a LocalCluster when not given."
    )
    n_workers: int | None = Field(
        None, ge=1, strict=True, description="LocalCluster worker processes (default: cores)."
    )
    threads_per_worker: int = Field(
        1, ge=1, strict=True, description="LocalCluster threads per worker process."
    )
    wait: bool = Field(
        True,
        strict=True,
        description=(
            "False: hand each run to the external cluster (address) and return at once; "
            "follow it with `gristmill runs wait`."
        ),
    )


class RayOrchestratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, description="The cluster (ray://host:10001, or auto); a local Ray when not given."
    )
    num_cpus: int | None = Field(
        None, ge=1, strict=True, description="CPUs of the local Ray (default: all cores)."
    )


class SubmittingOrchestratorConfig(BaseModel):
    """What every ``SubmittingOrchestrator`` takes; a flavor's own model extends it."""

    model_config = ConfigDict(extra="forbid")

    wait: bool = Field(
        False,
        strict=True,
        description="True: follow the run from the store until it ends (Ctrl-C stops it).",
    )
