"""Settings of the orchestrator flavors (pydantic; imported only to validate settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ParallelOrchestratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_workers: int = Field(32, ge=1, description="Steps running at once.")
