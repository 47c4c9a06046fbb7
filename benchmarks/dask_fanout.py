"""Dask and Ray against local_parallel and local (issue 11): a fan-out 1 -> 20 x 1 s sleep -> 1
(wall and concurrency), a CPU-bound fan-out of 20 pure-Python steps of ~0.5 s CPU each, and the
per-step overhead (an 11-step chain's recorded span / 11, without the cluster's start). Prints
one JSON line; run in a project (GRISTMILL_PROJECT). Dask runs on a LocalCluster of one
single-threaded worker process per core, Ray on a local Ray of all cores; each run starts its
own (counted in its wall time; the start alone is shown apart). Ray is skipped when it is not
installed."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from typing import Any

from gristmill import pipeline, step

CORES = os.cpu_count() or 1
CPU_STEP_SECONDS = 0.5


@step
def start() -> int:
    return 0


@step
def nap(x: int, i: int) -> float:
    time.sleep(1.0)
    return time.time()


@step
def burn(x: int, i: int, n: int) -> float:
    # Pure-Python CPU (n iterations, calibrated to ~0.5 s); holds the GIL the whole time.
    total = 0
    for k in range(n):
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


def fan(kind: str, iterations: int, width: int = 20) -> Any:
    @pipeline(name=f"bench_fan_{kind}")
    def fanned() -> None:
        x = start()
        if kind == "sleep":
            gather(*[nap(x, i=i) for i in range(width)])
        else:
            gather(*[burn(x, i=i, n=iterations) for i in range(width)])

    return fanned


@pipeline
def chain() -> None:
    x = start()
    for _ in range(10):
        x = inc(x)


def calibrate() -> int:
    """Iterations of ``burn``'s loop that take ~0.5 s of CPU on this machine."""
    n = 1_000_000
    began = time.process_time()
    total = 0
    for k in range(n):
        total += k * 3
    return int(n * CPU_STEP_SECONDS / max(time.process_time() - began, 1e-6))


def timed(runner: Any) -> tuple[float, str]:
    began = time.perf_counter()
    run = runner()
    return time.perf_counter() - began, run.id


def concurrency(run_id: str, step_prefix: str) -> tuple[int, float]:
    """The most steps named ``step_prefix*`` running at once, and the span from the first
    one's start to the last one's end (the fan-out's own time, without the cluster's start),
    from their recorded times."""
    from gristmill.project import find_project

    edges = []
    for record in find_project().store().get_step_runs(run_id):
        if record.name.startswith(step_prefix) and record.started_at and record.ended_at:
            edges += [(record.started_at, 1), (record.ended_at, -1)]
    most = now = 0
    for _, change in sorted(edges):
        now += change
        most = max(most, now)
    return most, max(t for t, _ in edges) - min(t for t, _ in edges)


def main() -> int:
    orchestrators: dict[str, Any] = {
        "local_parallel": "local_parallel",
        "dask": {"flavor": "dask", "n_workers": CORES, "threads_per_worker": 1},
    }
    if importlib.util.find_spec("ray") is not None:
        orchestrators["ray"] = {"flavor": "ray"}
    iterations = calibrate()
    out: dict[str, Any] = {"cores": CORES, "cpu_step_iterations": iterations}
    for kind in ("sleep", "cpu"):
        for name, orchestrator in orchestrators.items():
            runner = fan(kind, iterations).with_options(
                orchestrator=orchestrator, enable_cache=False
            )
            out[f"{kind}_{name}_s"], run_id = timed(runner)
            most, span = concurrency(run_id, "nap" if kind == "sleep" else "burn")
            out[f"{kind}_{name}_concurrency"] = most
            out[f"{kind}_{name}_span_s"] = span
    for name, orchestrator in {"local": "local", **orchestrators}.items():
        if name == "local_parallel":
            continue
        runner = chain.with_options(orchestrator=orchestrator, enable_cache=False)
        out[f"chain11_{name}_s"], run_id = timed(runner)
        # From the first step's start to the last one's end, as recorded: what running 11
        # steps one after another costs, without the cluster's start and stop.
        out[f"{name}_per_step_ms"] = concurrency(run_id, "")[1] / 11 * 1000
    # Each Dask or Ray run starts its own cluster: counted in the wall above, shown apart.
    from distributed import LocalCluster

    began = time.perf_counter()
    LocalCluster(n_workers=CORES, threads_per_worker=1, dashboard_address=None).close()
    out["dask_cluster_start_s"] = time.perf_counter() - began
    if "ray" in orchestrators:
        import ray

        began = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.shutdown()
        out["ray_start_s"] = time.perf_counter() - began
    for name in orchestrators:
        if name != "local_parallel":
            out[f"cpu_{name}_speedup"] = out["cpu_local_parallel_s"] / out[f"cpu_{name}_s"]
            out[f"cpu_{name}_span_speedup"] = (
                out["cpu_local_parallel_span_s"] / out[f"cpu_{name}_span_s"]
            )
    # Kept under the name the README table has used since the first Dask figures.
    out["dask_per_step_overhead_ms"] = out["dask_per_step_ms"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
