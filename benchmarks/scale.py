"""The scale check (`make bench-scale`): a 10,000-step pipeline compiled and run locally, and
a store holding 100,000 runs and 1,000,000 artifact versions (and 2,000,000 metric points, the
runs in 10 experiments) answering the list, lineage, comparison and metric-history queries
within DESIGN.md §8's 50 ms.

The big store is generated with direct inserts (through SQLAlchemy's connection, in large
batches) in the real schema: making a million artifact versions through pipeline runs would
take the better part of an hour and measure the write path, which the other benchmarks do.

    python benchmarks/scale.py [--runs 100000] [--outputs-per-run 10] [--points-per-run 20]
                               [--steps 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHAIN = 10  # the lineage query walks a chain of this many steps
EXPERIMENTS = 10  # the generated runs take turns in this many experiments


def timed(function: Any, repeat: int = 7) -> dict[str, float]:
    function()  # warm: connection, statement caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return {"min_ms": min(times) * 1000, "median_ms": statistics.median(times) * 1000}


def big_pipeline(steps: int) -> dict[str, Any]:
    from gristmill import pipeline, step

    @step
    def first() -> int:
        return 0

    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline(name=f"chain{steps}", enable_cache=False)
    def chain() -> None:
        x = first()
        for _ in range(steps - 1):
            x = inc(x)

    started = time.perf_counter()
    plan = chain.compile()
    compiled = time.perf_counter() - started
    started = time.perf_counter()
    run = chain()
    ran = time.perf_counter() - started
    assert run.status == "completed"
    assert run.steps[f"inc_{steps - 1}"].output().load() == steps - 1
    return {
        "steps": len(plan.order),
        "compile_s": compiled,
        "run_s": ran,
        "per_step_ms": ran / steps * 1000,
    }


def populate(url: str, runs: int, outputs_per_run: int, points_per_run: int) -> dict[str, Any]:
    """``runs`` runs of a two-step pipeline; their steps produce ``outputs_per_run`` artifact
    versions per run in all, and the second logs a ``loss`` series of ``points_per_run`` points
    (its last value and an accuracy as run metadata); one more run holds a CHAIN-step chain for
    the lineage query."""
    from gristmill.store import schema as s
    from gristmill.store.ids import artifact_id, pipeline_version_id
    from gristmill.store.ids import pipeline_id as derive_pipeline_id
    from gristmill.store.sql import SQLStore

    store = SQLStore(url)
    pipeline_id = derive_pipeline_id("scale")
    pipeline_version = pipeline_version_id("scale", "0" * 64)
    started = time.perf_counter()
    now = time.time() - runs
    batch = 5000
    with store.engine.begin() as conn:
        conn.execute(s.pipelines.insert(), {"id": pipeline_id, "name": "scale", "created_at": now})
        conn.execute(
            s.pipeline_versions.insert(),
            {
                "id": pipeline_version,
                "pipeline_id": pipeline_id,
                "spec_hash": "0" * 64,
                "spec": '{"name": "scale", "steps": []}',
                "created_at": now,
            },
        )
        conn.execute(
            s.artifacts.insert(),
            [
                {"id": artifact_id(f"scale.out{i}"), "name": f"scale.out{i}", "created_at": now}
                for i in range(outputs_per_run)
            ],
        )
    for offset in range(0, runs, batch):
        run_rows, step_rows, version_rows, output_rows = [], [], [], []
        point_rows: list[dict[str, Any]] = []
        metadata_rows: list[dict[str, Any]] = []
        for index in range(offset, min(runs, offset + batch)):
            run_id = uuid.uuid4().hex
            created = now + index
            run_rows.append(
                {
                    "id": run_id,
                    "name": f"scale-{index}",
                    "pipeline_id": pipeline_id,
                    "pipeline_version_id": pipeline_version,
                    "status": "completed",
                    "created_at": created,
                    "started_at": created,
                    "ended_at": created + 0.01,
                    "stack": "{}",
                    "config": json.dumps({"resolved_parameters": {"lr": index % 7 / 10}}),
                    "environment": "{}",
                    "tags": "[]",
                    "experiment": f"scale-{index % EXPERIMENTS}",
                }
            )
            for key, value in (("loss", 1 / (points_per_run + index % 13)), ("accuracy", 0.9)):
                metadata_rows.append(
                    {
                        "entity_type": "run",
                        "entity_id": run_id,
                        "key": key,
                        "value": json.dumps(value),
                        "value_type": "float",
                        "created_at": created,
                    }
                )
            for position in range(2):
                step_id = uuid.uuid4().hex
                step_rows.append(
                    {
                        "id": step_id,
                        "run_id": run_id,
                        "name": f"step{position}",
                        "position": position,
                        "source": "scale:step",
                        "status": "completed",
                        "created_at": created,
                        "started_at": created,
                        "ended_at": created,
                        "attempts": 1,
                        "parameters": "{}",
                    }
                )
                if position == 1:
                    point_rows.extend(
                        {
                            "run_id": run_id,
                            "step_run_id": step_id,
                            "name": "loss",
                            "step": k,
                            "value": 1 / (k + 1 + index % 13),
                            "created_at": created,
                        }
                        for k in range(points_per_run)
                    )
                for k in range(position, outputs_per_run, 2):
                    version_id = uuid.uuid4().hex
                    version_rows.append(
                        {
                            "id": version_id,
                            "artifact_id": artifact_id(f"scale.out{k}"),
                            "version": index + 1,
                            "uri": f"/scale/{version_id}",
                            "content_hash": version_id * 2,
                            "materializer": "json",
                            "data_type": "builtins.int",
                            "size": 1,
                            "producer_step_run_id": step_id,
                            "created_at": created,
                        }
                    )
                    output_rows.append(
                        {
                            "step_run_id": step_id,
                            "name": f"out{k}",
                            "artifact_version_id": version_id,
                        }
                    )
        with store.engine.begin() as conn:
            conn.execute(s.runs.insert(), run_rows)
            conn.execute(s.step_runs.insert(), step_rows)
            conn.execute(s.artifact_versions.insert(), version_rows)
            conn.execute(s.step_run_outputs.insert(), output_rows)
            conn.execute(s.metadata_entries.insert(), metadata_rows)
            if point_rows:
                conn.execute(s.metric_points.insert(), point_rows)
        print(f"  {offset + len(run_rows):>7} runs", file=sys.stderr, flush=True)
    generated = time.perf_counter() - started
    store.close()
    return {
        "runs": runs,
        "artifact_versions": runs * outputs_per_run,
        "metric_points": runs * points_per_run,
        "generate_s": generated,
    }


def chain_for_lineage(project_root: Path) -> str:
    """A real CHAIN-step run, whose last output's lineage the query walks."""
    from gristmill import pipeline, step

    @step
    def first() -> int:
        return 0

    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline(name="lineage_chain")
    def chain() -> None:
        x = first()
        for _ in range(CHAIN - 1):
            x = inc(x)

    run = chain()
    return run.steps[f"inc_{CHAIN - 1}"].output().id


def write_readme(results: dict[str, Any], steps: int) -> None:
    start, end = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"
    store, big = results["store"], results["big_pipeline"]
    lines = [
        start,
        f"{store['runs']:,} runs, {store['artifact_versions']:,} artifact versions and "
        f"{store['metric_points']:,} metric points in the SQLite store "
        f"(generated in {store['generate_s']:.0f} s); a {steps:,}-step pipeline compiled in "
        f"{big['compile_s']:.2f} s and ran in {big['run_s']:.1f} s ({big['per_step_ms']:.2f} ms per step).",
        "",
        "| query | min | median | budget |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, value in results["queries"].items():
        lines.append(
            f"| {name.replace('_', ' ')} | {value['min_ms']:.2f} ms | {value['median_ms']:.2f} ms | 50 ms |"
        )
    lines.append(end)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if start in text:
        before, rest = text.split(start, 1)
        readme.write_text(before + "\n".join(lines) + rest.split(end, 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--outputs-per-run", type=int, default=10)
    parser.add_argument("--points-per-run", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    (ROOT / "benchmarks" / ".work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scale-", dir=ROOT / "benchmarks" / ".work"))
    os.environ["GRISTMILL_PROJECT"] = str(work)
    os.environ["GRISTMILL_CACHE_DIR"] = str(work / "cache")
    results: dict[str, Any] = {}

    print(f"running a {args.steps}-step pipeline", file=sys.stderr)
    results["big_pipeline"] = big_pipeline(args.steps)
    print(json.dumps(results["big_pipeline"]), file=sys.stderr)

    from gristmill import Client
    from gristmill.project import find_project

    url = find_project().store_url
    print(
        f"generating {args.runs} runs with {args.outputs_per_run} artifact versions each",
        file=sys.stderr,
    )
    results["store"] = populate(url, args.runs, args.outputs_per_run, args.points_per_run)
    # The bulk load went around SQLite's automatic checkpoints; fold the WAL in, as a store
    # that grew run by run would have.
    with find_project().store().engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    last_output = chain_for_lineage(work)

    client = Client()
    newest = client.list_runs(limit=1)[0].id
    scale_run = client.list_runs(experiment="scale-3", limit=1)[0]
    results["queries"] = {
        "list_latest_50_runs": timed(lambda: [r.name for r in client.list_runs(limit=50)]),
        "count_runs": timed(client.count_runs),
        "get_run_with_steps_and_artifacts": timed(
            lambda: [
                (s.status, [a.uri for a in s.outputs.values()])
                for s in client.get_run(newest).refresh().steps.values()
            ]
        ),
        "lineage_of_one_artifact": timed(lambda: client.upstream(last_output)),
        "latest_version_of_an_artifact": timed(lambda: client.get_artifact_version("scale.out3")),
        "list_artifact_versions_50": timed(
            lambda: client.list_artifact_versions(name="scale.out3", limit=50)
        ),
        "list_latest_50_runs_of_an_experiment": timed(
            lambda: [r.name for r in client.list_runs(experiment="scale-3", limit=50)]
        ),
        "compare_50_runs_of_an_experiment": timed(
            lambda: client.compare_runs(experiment="scale-3", last=50, sort="-loss")
        ),
        "metric_history_of_a_run": timed(lambda: client.metric_history(scale_run, "loss")),
    }
    assert len(client.compare_runs(experiment="scale-3", last=50)) == min(50, args.runs)
    assert len(client.metric_history(scale_run, "loss")) == args.points_per_run
    assert len(client.upstream(last_output)) == CHAIN - 1
    for name, value in results["queries"].items():
        verdict = "ok" if value["median_ms"] <= 50 else "OVER 50 ms"
        print(
            f"{name:<36} min {value['min_ms']:7.2f} ms  median {value['median_ms']:7.2f} ms  {verdict}"
        )
    big = results["big_pipeline"]
    print(
        f"{args.steps}-step pipeline: compile {big['compile_s']:.2f} s, run {big['run_s']:.2f} s "
        f"({big['per_step_ms']:.2f} ms per step)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    write_readme(results, args.steps)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
