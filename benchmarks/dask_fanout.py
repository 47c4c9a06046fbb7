"""Dask against local_parallel (issue 11): a fan-out 1 -> 20 x 1 s sleep -> 1 (wall and
concurrency), a CPU-bound fan-out of 20 pure-Python steps of ~0.5 s CPU, and per-step overhead
of a 10-step chain on Dask vs local. Prints one JSON line; run in a project (GRISTMILL_PROJECT).
Dask uses a LocalCluster of one single-threaded worker process per core."""

from __future__ import annotations

import json
import os
import sys
import time

from gristmill import pipeline, step

CORES = os.cpu_count() or 1


@step
def start() -> int:
    return 0


@step
def nap(x: int, i: int) -> float:
    time.sleep(1.0)
    return time.time()


@step
def burn(x: int, i: int) -> float:
    # ~0.5 s of pure-Python CPU on a 2026 core; holds the GIL the whole time.
    total = 0
    for k in range(6_000_000):
        total += k * i
    return float(total % 7)


@step
def gather(
    a: float, b: float, c: float, d: float, e: float, f: float, g: float, h: float, i: float,
    j: float, k: float, l: float,  # noqa: E741
    m: float, n: float, o: float, p: float, q: float, r: float, s: float, t: float,
) -> int:  # fmt: skip
    return 20


@step
def inc(x: int) -> int:
    return x + 1


def fan(kind: str, width: int = 20):
    task = nap if kind == "sleep" else burn

    @pipeline(name=f"bench_fan_{kind}")
    def fanned() -> None:
        x = start()
        gather(*[task(x, i=i) for i in range(width)])

    return fanned


@pipeline
def chain() -> None:
    x = start()
    for _ in range(10):
        x = inc(x)


def timed(run: object) -> float:
    began = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> int:
    dask = {"flavor": "dask", "n_workers": CORES, "threads_per_worker": 1}
    out: dict[str, float | int] = {"cores": CORES}
    for kind in ("sleep", "cpu"):
        for name, orchestrator in (("local_parallel", "local_parallel"), ("dask", dask)):
            runner = fan(kind).with_options(orchestrator=orchestrator, enable_cache=False)
            out[f"{kind}_{name}_s"] = timed(runner)
    for name, orchestrator in (("local", "local"), ("dask", dask)):
        runner = chain.with_options(orchestrator=orchestrator, enable_cache=False)
        out[f"chain11_{name}_s"] = timed(runner)
    # A LocalCluster starts with each Dask run: counted in the wall above, and shown apart.
    from distributed import LocalCluster

    began = time.perf_counter()
    LocalCluster(n_workers=CORES, threads_per_worker=1, dashboard_address=None).close()
    out["dask_cluster_start_s"] = time.perf_counter() - began
    out["dask_per_step_overhead_ms"] = (
        (out["chain11_dask_s"] - out["dask_cluster_start_s"]) / 11 * 1000
    )
    out["local_per_step_ms"] = out["chain11_local_s"] / 11 * 1000
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
