"""Metaflow workloads: flows run on the local runtime with the local datastore and metadata
(under the project folder), every artifact of every step stored and tracked.

Each Metaflow step runs in its own process, so there is no in-process run: "in-process" times
here are Metaflow's programmatic Runner API (which starts `python flow.py run` and waits),
called from a Python process that has already done one warm-up run.

    python metaflow_workloads.py COMMAND [ARGS]
"""

from __future__ import annotations

import subprocess
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any

from workload_common import (
    WARM_STEPS,
    dir_bytes,
    emit,
    emit_query_timings,
    make_data,
    time_round_trips,
)

QUERY_STEPS = 10


def linear_source(n: int) -> str:
    """A linear flow of n steps: `start` makes 0, every next step (ending with `end`) adds 1.

    Metaflow reads a flow's graph from its class source, so a 100-step flow has to be written
    out as 100 methods; this writes them.
    """
    names = ["start", *[f"step_{i}" for i in range(2, n)], "end"]
    lines = ["from metaflow import FlowSpec, step", "", "", f"class Linear{n}Flow(FlowSpec):"]
    for index, name in enumerate(names):
        body = "self.x = 0" if index == 0 else "self.x = self.x + 1"
        lines += ["    @step", f"    def {name}(self):", f"        {body}"]
        if name != "end":
            lines.append(f"        self.next(self.{names[index + 1]})")
        lines.append("")
    lines += ["", 'if __name__ == "__main__":', f"    Linear{n}Flow()", ""]
    return "\n".join(lines)


def run_flow(path: str, **options: Any) -> Any:
    """One run through the Runner API; the client's Run object for it."""
    from metaflow import Runner

    with Runner(path, show_output=False) as runner:
        result = runner.run(**options)
        assert result.status == "successful", result.status
        return result.run


def timed(path: str, **options: Any) -> float:
    """Seconds for one Runner run after a small warm-up run from the same process."""
    run_flow(f"linear_{WARM_STEPS}.py")
    started = time.perf_counter()
    run_flow(path, **options)
    return time.perf_counter() - started


def artifact(kind: str, repeat: int) -> None:
    from metaflow import namespace

    namespace(None)
    started = time.perf_counter()
    data = make_data(kind)
    build = time.perf_counter() - started
    run_flow("artifact_flow.py", kind=kind)  # warm: page cache, datastore folders
    timings, run = time_round_trips(
        data, Path.cwd() / "raw", repeat, lambda: run_flow("artifact_flow.py", kind=kind)
    )
    sha = run["start"].task["data"].sha
    stored = Path.cwd() / ".metaflow" / "ArtifactFlow" / "data" / sha[:2] / sha
    emit(**timings, stored_bytes=dir_bytes(stored), producer_build_s=build)


def cached_check() -> None:
    """How many tasks of the newest 10-step run `resume` cloned instead of running."""
    from metaflow import Flow, namespace

    namespace(None)
    tasks = [task for step in Flow(f"Linear{QUERY_STEPS}Flow").latest_run for task in step]
    emit(cached=sum(task.origin_pathspec is not None for task in tasks), steps=len(tasks))


def populate(seconds: float) -> None:
    """`python ping_flow.py run` in a loop until the time is up (each run is a process tree),
    then one 10-step run for get_run and lineage to look at."""
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        subprocess.run([sys.executable, "ping_flow.py", "run"], check=True, capture_output=True)
        runs += 1
    run_flow(f"linear_{QUERY_STEPS}.py")
    emit(runs=runs + 1)


def queries() -> None:
    """Time each read once, after one untimed call (metadata files in the page cache)."""
    from metaflow import Flow, Run, namespace

    namespace(None)
    pathspec = Flow(f"Linear{QUERY_STEPS}Flow").latest_run.pathspec

    def list_latest() -> int:
        return len([run.created_at for run in islice(Flow("PingFlow"), 50)])

    def get_run() -> int:
        return sum(len(list(task.artifacts)) for step in Run(pathspec) for task in step)

    def lineage() -> int:
        """Task lineage: from `end`'s task to `start`'s through each task's parent task."""
        task, hops = Run(pathspec)["end"].task, 0
        while True:
            task["x"]  # the step's output (its metadata; .data would load it)
            parents = list(task.parent_tasks)
            if not parents:
                assert task.pathspec.split("/")[-2] == "start", task.pathspec
                return hops
            task, hops = parents[0], hops + 1

    emit_query_timings({"list_latest_50": list_latest, "get_run": get_run, "lineage": lineage})


def main(command: str, *args: str) -> None:
    if command == "generate":
        for n in (WARM_STEPS, QUERY_STEPS, 100):
            Path(f"linear_{n}.py").write_text(linear_source(n))
    elif command == "linear-timed":
        emit(seconds=timed(f"linear_{args[0]}.py"))
    elif command == "fanout":
        emit(seconds=timed("fanout_flow.py", max_workers=20))
    elif command == "cached-check":
        cached_check()
    elif command == "artifact":
        artifact(args[0], int(args[1]))
    elif command == "populate":
        populate(float(args[0]))
    elif command == "queries":
        queries()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
