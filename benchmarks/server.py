"""API latency through a real server (`make bench-server`, also run by `make bench-scale`): a
store of 100,000 runs (generated as `benchmarks/scale.py` does), `gristmill server start`
(uvicorn, its own process) on loopback, and the time of the calls a dashboard and a client
make, over HTTP with keep-alive: the latest 50 runs (with and without their total), a run
page's data (the run and its step runs), and the same through ``RestStore`` as a ``Client``
reads them. Budget: DESIGN.md §8's 50 ms, here including HTTP and JSON.

    python benchmarks/server.py [--runs 100000] [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUDGET_MS = 50.0

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measured(call: Any, calls: int) -> dict[str, float]:
    for _ in range(5):  # warm: connections, statement caches
        call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "min_ms": times[0],
        "median_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
        "calls": calls,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--outputs-per-run", type=int, default=2)
    parser.add_argument("--points-per-run", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    (ROOT / "benchmarks" / ".work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="server-", dir=ROOT / "benchmarks" / ".work"))
    os.environ["GRISTMILL_PROJECT"] = str(work)
    os.environ["GRISTMILL_CACHE_DIR"] = str(work / "cache")
    try:
        return _run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, args: argparse.Namespace) -> int:
    from scale import populate

    from gristmill import Client
    from gristmill.project import Project, close_stores
    from gristmill.store.rest import RestStore
    from gristmill.testing.server import running_server

    project = Project(work)
    project.init()
    print(f"generating {args.runs} runs", file=sys.stderr)
    store = populate(project.store_url, args.runs, args.outputs_per_run, args.points_per_run)
    opened = project.store()
    with opened.engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    close_stores()

    results: dict[str, Any] = {"store": store, "budget_ms": BUDGET_MS}
    with running_server(project) as server:
        http = server.client("viewer")
        newest = http.get("/api/v1/runs", params={"limit": 1}).json()["items"][0]["id"]
        rest = RestStore(server.url, server.token("viewer"))
        client = Client(store=rest)

        def run_page_two_calls() -> None:
            http.get(f"/api/v1/runs/{newest}").raise_for_status()
            http.get(f"/api/v1/runs/{newest}/steps").raise_for_status()

        def get(path: str, **params: Any) -> Any:
            def call() -> None:
                answer = http.get(path, params=params)
                answer.raise_for_status()

            return call

        checks = {
            "GET /api/v1/runs?limit=50 (with total)": get("/api/v1/runs", limit=50),
            "GET /api/v1/runs?limit=50&total=false": get("/api/v1/runs", limit=50, total="false"),
            "run page: GET /runs/{id} + /runs/{id}/steps": run_page_two_calls,
            "run page: GET /runs/{id}/page (steps, io, metadata)": get(
                f"/api/v1/runs/{newest}/page"
            ),
            "Client over RestStore: list_runs(limit=50)": lambda: client.list_runs(limit=50),
            "Client over RestStore: run + steps + outputs": lambda: [
                (s.status, list(s.outputs)) for s in client.get_run(newest).refresh().steps.values()
            ],
        }
        etag = http.get("/api/v1/runs", params={"limit": 50}).headers["ETag"]
        checks["GET /api/v1/runs?limit=50 answered 304 (If-None-Match)"] = lambda: http.get(
            "/api/v1/runs", params={"limit": 50}, headers={"If-None-Match": etag}
        )
        results["calls"] = {name: measured(call, args.calls) for name, call in checks.items()}
        rest.close()
        http.close()

    for name, value in results["calls"].items():
        verdict = "ok" if value["p95_ms"] <= BUDGET_MS else f"OVER {BUDGET_MS:g} ms"
        print(
            f"{name:<58} min {value['min_ms']:6.2f}  median {value['median_ms']:6.2f}  "
            f"p95 {value['p95_ms']:6.2f} ms  {verdict}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "server.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
