"""The benchmark pipelines as Kedro nodes; shared by `kedro run` and kedro_workloads.py."""

from __future__ import annotations

import time
from functools import partial

from kedro.pipeline import Pipeline, node, pipeline

FANOUT, NAP_SECONDS = 20, 0.5


def first() -> int:
    return 0


def inc(x: int) -> int:
    return x + 1


def nap(x: int, i: int) -> int:
    time.sleep(NAP_SECONDS)
    return x + i


def join(*values: int) -> int:
    return sum(values)


def linear(n: int) -> Pipeline:
    nodes = [node(first, inputs=None, outputs="x_1", name="first")]
    nodes += [
        node(inc, inputs=f"x_{i - 1}", outputs=f"x_{i}", name=f"inc_{i}") for i in range(2, n + 1)
    ]
    return pipeline(nodes)


def fanout() -> Pipeline:
    naps = [
        node(partial(nap, i=i), inputs="x_1", outputs=f"nap_{i}", name=f"nap_{i}")
        for i in range(FANOUT)
    ]
    return pipeline(
        [
            node(first, inputs=None, outputs="x_1", name="first"),
            *naps,
            node(join, inputs=[f"nap_{i}" for i in range(FANOUT)], outputs="total", name="join"),
        ]
    )
