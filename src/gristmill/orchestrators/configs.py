"""Settings of the orchestrator flavors (pydantic; imported only to validate settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ParallelOrchestratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # strict: "4" or true is a mistake in code, not a number to coerce.
    max_workers: int = Field(32, ge=1, strict=True, description="Steps running at once.")
