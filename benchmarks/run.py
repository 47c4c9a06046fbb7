"""`make bench`: gristmill's numbers against the budgets of DESIGN.md §8.

Every figure is measured in fresh subprocesses (a cold interpreter, as a user runs it) in a
throwaway project, repeated, and reported as min and median with peak RSS. Results go to
benchmarks/results/core.json and to the table between the bench markers in README.md.

    python benchmarks/run.py [--quick] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench:core:start -->", "<!-- bench:core:end -->"

CHAIN = """
import sys, time
from gristmill import step, pipeline

@step
def first() -> int:
    return 0

@step
def inc(x: int) -> int:
    return x + 1

def build(n):
    @pipeline(name=f"chain{n}")
    def chain():
        x = first()
        for _ in range(n - 1):
            x = inc(x)
    return chain

if __name__ == "__main__":
    n, flavor, cache = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "cache"
    if len(sys.argv) > 4:  # warm: imports and the store opened, so only the steps are timed
        build(2).with_options(orchestrator=flavor, enable_cache=False)()
    p = build(n).with_options(orchestrator=flavor, enable_cache=cache)
    started = time.perf_counter()
    run = p()
    elapsed = time.perf_counter() - started
    assert run.status == "completed", run.status
    print(elapsed)
"""

ONE_STEP = """
from gristmill import step, pipeline

@step
def one() -> int:
    return 1

@pipeline
def single():
    one()

if __name__ == "__main__":
    single.with_options(enable_cache=False)()
"""

FAN_OUT = """
import time
from gristmill import step, pipeline

@step
def start() -> int:
    return 0

@step
def nap(x: int, i: int) -> int:
    time.sleep(0.5)
    return i

@step
def join(xs: list) -> int:
    return len(xs)

@step
def collect(a: int, b: int, c: int, d: int, e: int, f: int, g: int, h: int, i: int, j: int,
            k: int, l: int, m: int, n: int, o: int, p: int, q: int, r: int, s: int, t: int) -> int:
    return a + t

@pipeline
def fan():
    x = start()
    collect(*[nap(x, i=i) for i in range(20)])

if __name__ == "__main__":
    import sys
    run = fan.with_options(orchestrator="local_parallel", enable_cache=False)
    run()  # warm: imports and the store, as for the per-step figures
    started = time.perf_counter()
    result = run()
    print(time.perf_counter() - started)
"""

ROUND_TRIP = """
import sys, time, tempfile, os
import numpy as np
import pandas as pd
from gristmill import step, pipeline

KIND = sys.argv[1]
if KIND == "numpy":
    DATA = np.random.default_rng(0).random(100 * 1024 * 1024 // 8)
else:
    rng = np.random.default_rng(0)
    DATA = pd.DataFrame({f"c{i}": rng.random(1_000_000) for i in range(10)})

def consume(value):
    return float(value.sum()) if KIND == "numpy" else float(value["c0"].sum())

@step(cache=False)
def produce() -> object:
    return DATA

@step(cache=False)
def use(value: object) -> float:
    return consume(value)

@pipeline
def passing():
    use(produce())

def raw(folder):
    if KIND == "numpy":
        path = os.path.join(folder, "a.npy")
        np.save(path, DATA)
        return consume(np.load(path))
    path = os.path.join(folder, "a.parquet")
    DATA.to_parquet(path)
    return consume(pd.read_parquet(path))

if __name__ == "__main__":
    import json, shutil
    run = passing()  # warm: imports, store
    timings = {"raw": [], "gristmill": []}
    for _ in range(int(sys.argv[2])):
        folder = tempfile.mkdtemp(dir=os.environ["BENCH_DIR"])
        os.sync()  # start each from clean page cache: no writeback of the last one in the way
        started = time.perf_counter(); raw(folder); timings["raw"].append(time.perf_counter() - started)
        raw_size = sum(f.stat().st_size for f in __import__("pathlib").Path(folder).iterdir())
        shutil.rmtree(folder)
        os.sync()
        started = time.perf_counter(); run = passing(); timings["gristmill"].append(time.perf_counter() - started)
    timings["raw_bytes"] = raw_size
    timings["stored_bytes"] = run.steps["produce"].output().size
    print(json.dumps(timings))
"""


def measure(args: list[str], cwd: Path, env: dict[str, str], repeat: int) -> dict[str, Any]:
    """Run a fresh interpreter ``repeat`` times: wall times, what it printed, peak RSS (KiB)."""
    walls, outputs, rss = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=err
            )
            _, status, usage = os.wait4(process.pid, 0)
            walls.append(time.perf_counter() - started)
            out.seek(0)
            err.seek(0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"benchmark failed: {args}\n{err.read().decode()}")
            outputs.append(out.read().decode().strip())
        rss.append(usage.ru_maxrss)
    return {"walls": walls, "outputs": outputs, "rss_kib": max(rss)}


def stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README table")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7

    # A project folder beside the code, as a user's would be (on some machines /tmp is a
    # much slower filesystem for creating files).
    (ROOT / "benchmarks" / ".work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT / "benchmarks" / ".work"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env.update(
        GRISTMILL_PROJECT=str(work), GRISTMILL_CACHE_DIR=str(work / "cache"), BENCH_DIR=str(work)
    )
    for name, code in {
        "chain.py": CHAIN,
        "one.py": ONE_STEP,
        "fan.py": FAN_OUT,
        "roundtrip.py": ROUND_TRIP,
    }.items():
        (work / name).write_text(textwrap.dedent(code))
    gristmill_cli = str(Path(sys.executable).with_name("gristmill"))

    rows: list[dict[str, Any]] = []

    def record(
        name: str,
        value: dict[str, float],
        budget: float | None,
        unit: str = "ms",
        note: str = "",
        rss: int = 0,
    ) -> None:
        scale = 1000 if unit == "ms" else 1
        row = {
            "name": name,
            "unit": unit,
            "min": value["min"] * scale,
            "median": value["median"] * scale,
            "budget": budget,
            "ok": None if budget is None else value["median"] * scale <= budget,
            "peak_rss_mib": round(rss / 1024, 1) if rss else None,
            "note": note,
        }
        rows.append(row)
        verdict = "" if budget is None else ("  ok" if row["ok"] else f"  OVER budget {budget}")
        print(
            f"{name:<58} min {row['min']:9.2f} {unit}  median {row['median']:9.2f} {unit}{verdict}",
            flush=True,
        )

    # 1. import and CLI start
    code = "import time; t=time.perf_counter(); import gristmill; print(time.perf_counter()-t)"
    result = measure(["-c", code], work, env, repeat * 2)
    record(
        "import gristmill (in-process)",
        stats([float(o) for o in result["outputs"]]),
        100,
        rss=result["rss_kib"],
    )
    code = "import time; t=time.perf_counter(); from gristmill import step, pipeline; print(time.perf_counter()-t)"
    result = measure(["-c", code], work, env, repeat * 2)
    record(
        "from gristmill import step, pipeline (in-process)",
        stats([float(o) for o in result["outputs"]]),
        None,
    )
    walls = []
    for _ in range(repeat * 2):
        started = time.perf_counter()
        subprocess.run([gristmill_cli, "--help"], env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    record("gristmill --help (process wall)", stats(walls), 150)

    # 2. one-step pipeline, tracking on, the way a user runs it
    measure(["one.py"], work, env, 1)  # creates the store
    result = measure(["one.py"], work, env, repeat)
    record(
        "one-step pipeline, `python pipeline.py` wall",
        stats(result["walls"]),
        300,
        rss=result["rss_kib"],
    )

    # 3. per-step overhead, both local orchestrators
    for flavor in ("local", "local_parallel"):
        for n in (10, 100, 1000):
            times = [
                float(o)
                for o in measure(
                    ["chain.py", str(n), flavor, "nocache", "warm"], work, env, repeat
                )["outputs"]
            ]
            per_step = stats([t / n for t in times])
            record(
                f"per-step overhead, {n} steps, {flavor}",
                per_step,
                1.0,
                note=f"run {statistics.median(times) * 1000:.0f} ms",
            )
    result = measure(["chain.py", "1000", "local", "nocache"], work, env, repeat)
    record(
        "1,000-step pipeline, local, process wall",
        stats(result["walls"]),
        3000,
        rss=result["rss_kib"],
    )
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for name, code in {
        "chain.py": CHAIN,
        "one.py": ONE_STEP,
        "fan.py": FAN_OUT,
        "roundtrip.py": ROUND_TRIP,
    }.items():
        (work / name).write_text(textwrap.dedent(code))

    # 4. cached re-run of a 10-step pipeline (process wall)
    measure(["chain.py", "10", "local", "cache"], work, env, 1)
    result = measure(["chain.py", "10", "local", "cache"], work, env, repeat)
    record("cached re-run, 10 steps, process wall", stats(result["walls"]), 300)

    # 5. fan-out of 20 steps sleeping 0.5 s
    times = [float(o) for o in measure(["fan.py"], work, env, max(2, repeat // 2))["outputs"]]
    record("fan-out 20 x 0.5 s, local_parallel", stats(times), 800)

    # 6. artifact round trips against raw numpy / Parquet on the same disk
    for kind, label in (("numpy", "100 MB numpy array"), ("pandas", "1e6 x 10 DataFrame")):
        timings = json.loads(
            measure(["roundtrip.py", kind, str(repeat)], work, env, 1)["outputs"][0]
        )
        raw, ours = stats(timings["raw"]), stats(timings["gristmill"])
        record(f"{label}: raw save+load", raw, None)
        ratio = ours["median"] / raw["median"]
        note = (
            f"{ratio:.2f}x raw (budget 1.5x); stored {timings['stored_bytes'] / 1e6:.0f} MB, "
            f"raw {timings['raw_bytes'] / 1e6:.0f} MB"
        )
        record(f"{label}: between two steps", ours, None, note=note)
        rows[-1]["ratio"] = ratio
        rows[-1]["ok"] = ratio <= 1.5

    # 7. library artifacts against the library's own save+load (issue 13): each its own script,
    # skipped with a note where the library is not installed (they are in the `ml` extra)
    library_benchmarks = [
        (
            "torch_state_dict.py",
            [str(max(3, repeat // 2))],
            "~100 MB PyTorch state_dict",
            "torch.save+load",
            ("torch_save_load_s", "gristmill_two_steps_s"),
        ),
        (
            "spark_frame.py",
            ["--repeats", "3"],
            "1e6-row Spark DataFrame",
            "Spark write+read Parquet",
            ("raw", "gristmill"),
        ),
    ]
    for script, script_args, label, raw_label, (raw_key, ours_key) in library_benchmarks:
        completed = subprocess.run(
            [sys.executable, str(HERE / script), *script_args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if completed.returncode != 0:
            print(f"{label}: skipped ({completed.stderr.strip().splitlines()[-1:]})")
            continue
        found = json.loads(completed.stdout.strip().splitlines()[-1])
        if raw_key in found:  # {"min": s, "median": s} pairs
            raw, ours = found[raw_key], found[ours_key]
        else:  # flat *_min_s / *_median_s keys
            raw = {"min": found[f"{raw_key}_min_s"], "median": found[f"{raw_key}_median_s"]}
            ours = {"min": found[f"{ours_key}_min_s"], "median": found[f"{ours_key}_median_s"]}
        record(f"{label}: {raw_label}", raw, None)
        ratio = ours["median"] / raw["median"]
        record(f"{label}: between two steps", ours, None, note=f"{ratio:.2f}x the library's own")
        rows[-1]["ratio"] = ratio
        rows[-1]["ok"] = ratio <= 1.5

    # 8. Dask and Ray against local_parallel and local (issue 11): one script. "dask": each
    # run starts its own LocalCluster (as Ray its local Ray); "dask, running external
    # cluster": a `dask scheduler` + `dask worker` started once by the script, runs given
    # its address (what users with a cluster have)
    completed = subprocess.run(
        [sys.executable, str(HERE / "dask_fanout.py")],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(HERE)},
        cwd=work,
        check=False,
    )
    if completed.returncode != 0:
        print(f"dask/ray: skipped ({completed.stderr.strip().splitlines()[-1:]})")
    else:
        found = json.loads(completed.stdout.strip().splitlines()[-1])
        engines = [e for e in ("local_parallel", "dask", "ray") if f"sleep_{e}_s" in found]
        shown = {"dask": "dask (LocalCluster started per run)"}
        for key, label in (
            ("sleep", "fan-out 1 -> 20 x 1 s sleep -> 1"),
            ("cpu", "fan-out of 20 CPU-bound pure-Python steps (~0.5 s each)"),
        ):
            for flavor in engines:
                seconds = found[f"{key}_{flavor}_s"]
                note = (
                    f"{found[f'{key}_{flavor}_concurrency']} at once; the steps' own span "
                    f"{found[f'{key}_{flavor}_span_s']:.1f} s"
                )
                if key == "cpu" and flavor != "local_parallel":
                    note += f"; {found[f'cpu_{flavor}_span_speedup']:.2f}x local_parallel's span"
                record(
                    f"{label}, {shown.get(flavor, flavor)}",
                    {"min": seconds, "median": seconds},
                    None,
                    unit="s",
                    note=note,
                )
        starts = {"dask": "dask_cluster_start_s", "ray": "ray_start_s"}
        for flavor in engines[1:]:
            per_step = found[f"{flavor}_per_step_ms"] / 1000
            record(
                f"per-step overhead, {flavor} (11-step chain's span / 11)",
                {"min": per_step, "median": per_step},
                None,
                note=f"local: {found['local_per_step_ms']:.1f} ms/step; {flavor} start "
                f"{found[starts[flavor]]:.1f} s per run",
            )
        if "cpu_dask_external_repeated_s" in found:
            workers = found["external_workers"]
            threads = found["cpu_local_parallel_repeated_s"]
            record(
                "fan-out of 20 CPU-bound pure-Python steps (~0.5 s each), dask on a running "
                f"external cluster ({workers} workers x 1 thread)",
                found["cpu_dask_external_repeated_s"],
                None,
                unit="s",
                note=f"{found['cpu_dask_external_repeated_concurrency']} at once; "
                f"{found['cpu_dask_external_speedup']:.2f}x local_parallel's "
                f"{threads['median']:.1f} s (medians of {found['external_repeats']} "
                "alternating runs)",
            )
            per_step = found["dask_external_per_step_ms"] / 1000
            record(
                "per-step overhead, dask on a running external cluster (11-step chain's span / 11)",
                {"min": per_step, "median": per_step},
                None,
            )

    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "core.json").write_text(
        json.dumps({"machine": machine, "results": rows}, indent=2) + "\n"
    )
    if not args.no_readme:
        write_readme(rows, machine)
    return 0


def write_readme(rows: list[dict[str, Any]], machine: dict[str, Any]) -> None:
    lines = [
        START,
        f"Measured by `make bench` on {machine['date']}: {machine['cpus']} CPUs, Python {machine['python']}, "
        f"{machine['platform']}.",
        "",
        "| what | min | median | budget | |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        unit = row["unit"]
        budget = "" if row["budget"] is None else f"{row['budget']:g} {unit}"
        if "ratio" in row:
            budget = "1.5x raw"
        verdict = "" if row["ok"] is None else ("ok" if row["ok"] else "**over**")
        note = f" ({row['note']})" if row["note"] else ""
        lines.append(
            f"| {row['name']}{note} | {row['min']:.2f} {unit} | {row['median']:.2f} {unit} | {budget} | {verdict} |"
        )
    lines.append(END)
    text = README.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + "\n".join(lines) + after
    else:
        text += "\n## Performance\n\n" + "\n".join(lines) + "\n"
    README.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
