"""Pipelines `kedro run --pipeline NAME` knows."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from peer_bench.pipelines import fanout, linear


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {f"linear_{n}": linear(n) for n in (2, 10, 100)}
    pipelines["fanout_20"] = fanout()
    pipelines["__default__"] = pipelines["linear_10"]
    return pipelines
