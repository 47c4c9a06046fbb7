"""Dask and Ray against local_parallel and local (issue 11): a fan-out 1 -> 20 x 1 s sleep -> 1
(wall and concurrency), a CPU-bound fan-out of 20 pure-Python steps of ~0.5 s CPU each, and the
per-step overhead (an 11-step chain's recorded span / 11, without the cluster's start). Prints
one JSON line; run in a project (GRISTMILL_PROJECT). Two Dask cases:

- ``dask``: no address, so each run starts its own LocalCluster (one single-threaded worker
  process per core) and stops it after: the start is counted in its wall time (shown apart);
- ``dask_external``: what users with a cluster have, a running ``dask scheduler`` and ``dask
  worker --nworkers 2 --nthreads 1`` on loopback, started once here, warmed by one untimed run,
  its address given as the orchestrator's ``address``. Its CPU-bound fan-out and
  local_parallel's are run ``--repeats`` times each, alternately, and reported as min/median.

Ray runs on a local Ray of all cores started per run; it is skipped when not installed."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gristmill import pipeline, step

CORES = os.cpu_count() or 1
CPU_STEP_SECONDS = 0.5
# The external cluster's shape: as a user starts one on a 2-core machine.
EXTERNAL_WORKERS = 2


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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each external-cluster comparison"
    )
    args = parser.parse_args()
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
    out.update(external_cluster_figures(iterations, args.repeats))
    print(json.dumps(out))
    return 0


def external_cluster_figures(iterations: int, repeats: int) -> dict[str, Any]:
    """The CPU-bound fan-out on a running external cluster against local_parallel (each run
    ``repeats`` times, alternately, so that a busy machine slows both alike), and the
    per-step overhead there."""
    out: dict[str, Any] = {"external_workers": EXTERNAL_WORKERS, "external_repeats": repeats}
    with external_cluster(EXTERNAL_WORKERS) as address:
        external = {"flavor": "dask", "address": address}
        # Warm, as a cluster in use is: its workers have imported gristmill and the steps.
        warm = fan("cpu", 1000).with_options(orchestrator=external, enable_cache=False)()
        assert warm.status == "completed", warm.status
        walls: dict[str, list[float]] = {"local_parallel": [], "dask_external": []}
        spans: dict[str, list[float]] = {"local_parallel": [], "dask_external": []}
        for _ in range(repeats):
            for name, orchestrator in (
                ("local_parallel", "local_parallel"),
                ("dask_external", external),
            ):
                runner = fan("cpu", iterations).with_options(
                    orchestrator=orchestrator, enable_cache=False
                )
                seconds, run_id = timed(runner)
                most, span = concurrency(run_id, "burn")
                walls[name].append(seconds)
                spans[name].append(span)
                out[f"cpu_{name}_repeated_concurrency"] = most
        for name, seconds_each in walls.items():
            out[f"cpu_{name}_repeated_s"] = {
                "min": min(seconds_each),
                "median": statistics.median(seconds_each),
                "all": seconds_each,
            }
            out[f"cpu_{name}_repeated_span_s"] = statistics.median(spans[name])
        out["cpu_dask_external_speedup"] = statistics.median(
            walls["local_parallel"]
        ) / statistics.median(walls["dask_external"])
        out["cpu_dask_external_speedup_min"] = min(walls["local_parallel"]) / min(
            walls["dask_external"]
        )
        runner = chain.with_options(orchestrator=external, enable_cache=False)
        out["chain11_dask_external_s"], run_id = timed(runner)
        out["dask_external_per_step_ms"] = concurrency(run_id, "")[1] / 11 * 1000
    return out


@contextmanager
def external_cluster(workers: int) -> Iterator[str]:
    """A ``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` on loopback, as a
    user runs them: subprocesses with the stores' variables and the code's path in their
    environment (as an operator sets them on a cluster). Yields the scheduler's address."""
    import socket

    from distributed import Client

    from gristmill.execution.worker import worker_credentials
    from gristmill.project import find_project

    project = find_project()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask"))
    folder = Path(tempfile.mkdtemp(prefix="gristmill-bench-dask-"))
    env = {
        **os.environ,
        "GRISTMILL_PROJECT": str(project.root),
        "GRISTMILL_STORE_URL": project.store_url,
        **worker_credentials(project.store_url),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir()),
    }
    with (folder / "cluster.log").open("w") as log:
        scheduler = subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        worker_processes = subprocess.Popen(
            [
                dask,
                "worker",
                address,
                *("--nworkers", str(workers), "--nthreads", "1", "--no-dashboard"),
                *("--local-directory", str(folder / "workers")),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with Client(address, timeout=5) as client:
                        client.wait_for_workers(workers, timeout=60)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield address
        finally:
            for process in (worker_processes, scheduler):
                process.terminate()
            for process in (worker_processes, scheduler):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
