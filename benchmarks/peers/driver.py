"""Peer benchmarks: the workloads of DESIGN.md §8 run through ZenML, Kedro, Metaflow and
Prefect 3, so gristmill's numbers (benchmarks/run.py) have something to stand beside.

Each peer gets its own virtualenv (work_dir/venvs/<peer>, reused while it holds the pinned
version) and a fresh project folder (work_dir/projects/<peer>) holding its workload scripts,
its tool home and its stores. Every figure comes from fresh subprocesses of that venv's Python,
repeated, with the peak RSS the kernel reports for the process tree (os.wait4's ru_maxrss: the
largest single process, not a sum). Times are seconds.

    python benchmarks/peers/driver.py [--repeat N] [--peer zenml ...] [--populate-seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PINS = {"zenml": "0.98.0", "kedro": "1.7.0", "metaflow": "2.19.39", "prefect": "3.9.1"}
EXTRAS = ("numpy", "pandas", "pyarrow")  # installed unpinned beside each peer; versions noted
POPULATE_SECONDS = 240.0  # per peer, to fill its run store for the client queries
PROCESS_TIMEOUT_S = 900.0
MARKER = "PEER_BENCH_RESULT "  # as printed by workload_common.emit
HERE = Path(__file__).resolve().parent
DEFAULT_WORK_DIR = HERE.parent / ".work"
FANOUT_WORK_S = 20 * 0.5


@dataclass(frozen=True)
class Peer:
    """How to install one tool and how each workload maps onto it.

    Commands are whitespace-separated templates, formatted per token with {python} (the venv's
    interpreter), {bin} (its bin folder), {n}, {kind} and {repeat}; they run in the project.
    """

    name: str
    requirement: str  # pip requirements, whitespace-separated, the peer's own first
    package: str  # what `import` loads
    user_import: str  # the import a pipeline file starts with
    files: tuple[str, ...]  # under benchmarks/peers; a folder's contents go to the project root
    script: str  # the workload script taking COMMAND [ARGS]
    setup: tuple[str, ...]  # run once in a fresh project before any measurement
    help: str
    linear_process: str  # one N-step run, caching off, as a user starts it
    artifact: str
    cached: tuple[str, str] | None  # (first run, timed re-run) with caching on
    fanout_variants: dict[str, str] = field(default_factory=dict)  # extra fan-out figures
    # For a tool that stores nothing by default: the artifact workload with the data stored.
    artifact_stored: str | None = None
    queries: bool = True
    env: dict[str, str] = field(default_factory=dict)  # {project} and {home} are filled in
    notes: tuple[str, ...] = ()
    own_venv: bool = False  # gristmill itself: measured in the project's own environment


PEERS = {
    "gristmill": Peer(
        name="gristmill",
        requirement="gristmill (this checkout)",
        package="gristmill",
        user_import="from gristmill import pipeline, step",
        files=("workload_common.py", "gristmill_workloads.py"),
        script="gristmill_workloads.py",
        setup=("{python} gristmill_workloads.py linear 2",),
        help="{bin}/gristmill --help",
        linear_process="{python} gristmill_workloads.py linear {n}",
        artifact="{python} gristmill_workloads.py artifact {kind} {repeat}",
        cached=(
            "{python} gristmill_workloads.py cached",
            "{python} gristmill_workloads.py cached",
        ),
        env={"GRISTMILL_PROJECT": "{project}", "GRISTMILL_CACHE_DIR": "{home}/cache"},
        own_venv=True,
        notes=(
            "The default stack: SQLite store (WAL), local artifact store, local orchestrator; "
            "fanout_20 on the local_parallel orchestrator (threads).",
            "queries: real runs of a one-step pipeline looped in one process, up to 10,000.",
        ),
    ),
    "zenml": Peer(
        name="zenml",
        requirement=f"zenml[local]=={PINS['zenml']}",
        package="zenml",
        user_import="from zenml import pipeline, step",
        files=("workload_common.py", "zenml_workloads.py", "zenml_artifacts.py"),
        script="zenml_workloads.py",
        setup=("{bin}/zenml init", "{python} zenml_workloads.py linear 2"),
        help="{bin}/zenml --help",
        linear_process="{python} zenml_workloads.py linear {n}",
        artifact="{python} zenml_artifacts.py {kind} {repeat}",
        cached=(
            "{python} zenml_workloads.py cached",
            "{python} zenml_workloads.py cached",
        ),
        fanout_variants={"dynamic": "{python} zenml_workloads.py fanout-dynamic"},
        env={
            "ZENML_CONFIG_PATH": "{home}/zenml",
            "ZENML_ANALYTICS_OPT_IN": "false",
        },
        notes=(
            "Default local stack after `zenml init`: SQLite store, local artifact store and "
            "local orchestrator; `zenml[local]` is ZenML's extra for running without a server.",
            "fanout_20 is a static pipeline, which the local orchestrator runs one step at a "
            "time; fanout_20.dynamic is the same fan-out as a dynamic pipeline "
            "(@pipeline(dynamic=True), step.submit()), which ZenML runs on a thread pool "
            "(ZENML_DYNAMIC_PIPELINE_WORKER_COUNT, default 10).",
            "Artifacts go through ZenML's numpy and pandas materializers, with the default "
            "metadata and visualizations they compute.",
            "queries: runs are created by looping a one-step pipeline in one process; "
            "get_run and lineage read a 10-step run made last; lineage follows each output's "
            "producer step and that step's input artifact.",
        ),
    ),
    "kedro": Peer(
        name="kedro",
        requirement=f"kedro=={PINS['kedro']} kedro-datasets==9.6.0",
        package="kedro",
        user_import="from kedro.pipeline import node, pipeline",
        files=("workload_common.py", "kedro_workloads.py", "kedro_project"),
        script="kedro_workloads.py",
        setup=("{bin}/kedro run --pipeline linear_2",),
        help="{bin}/kedro --help",
        linear_process="{bin}/kedro run --pipeline linear_{n}",
        artifact="{python} kedro_workloads.py artifact {kind} {repeat}",
        artifact_stored="{python} kedro_workloads.py artifact-stored {kind} {repeat}",
        cached=None,
        fanout_variants={"default_workers": "{python} kedro_workloads.py fanout-default"},
        queries=False,
        notes=(
            "Kedro tracks nothing: no run store, no step cache, and outputs between nodes "
            "live in memory (MemoryDataset, copied on save/load); stored_bytes is therefore 0 "
            "and cached_10 and queries are unsupported. The artifact figures' `stored` "
            "variant declares the hand-off in the catalog so it is kept, as a Kedro user "
            "does: pandas.ParquetDataset for the DataFrame, pickle.PickleDataset for the "
            "array (kedro-datasets 9.6.0 has no numpy dataset).",
            "total/per_step: SequentialRunner().run(pipeline, DataCatalog()) in-process; "
            "process_wall: `kedro run --pipeline linear_N` in the project (a full KedroSession "
            "with config loading).",
            "fanout_20: ThreadRunner(max_workers=20); fanout_20.default_workers: ThreadRunner() "
            "whose default is os.cpu_count() threads. ParallelRunner (processes, os.cpu_count() "
            "workers by default) was not used: the steps only sleep.",
        ),
    ),
    "metaflow": Peer(
        name="metaflow",
        requirement=f"metaflow=={PINS['metaflow']}",
        package="metaflow",
        user_import="from metaflow import FlowSpec, step",
        files=("workload_common.py", "metaflow_workloads.py", "metaflow_flows"),
        script="metaflow_workloads.py",
        setup=(
            "{python} metaflow_workloads.py generate",
            "{python} linear_2.py run",
        ),
        help="{python} ping_flow.py --help",
        linear_process="{python} linear_{n}.py run",
        artifact="{python} metaflow_workloads.py artifact {kind} {repeat}",
        cached=("{python} linear_10.py run", "{python} linear_10.py resume"),
        env={
            "METAFLOW_HOME": "{home}/metaflow",
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": "{project}",
            "METAFLOW_DEFAULT_DATASTORE": "local",
            "METAFLOW_DEFAULT_METADATA": "local",
        },
        notes=(
            "Local runtime, local datastore and local metadata under the project folder; "
            "every step runs in its own process and stores its artifacts (pickled, gzip).",
            "A flow needs `start` and `end`: linear_N is start + N-2 steps + end; the ping "
            "flow for queries has 2 steps; fanout_20 is start -> 20 foreach tasks -> join -> "
            "end, run with --max-workers 20.",
            "total/per_step and fanout_20 time Metaflow's Runner API (it starts `python flow.py "
            "run` and waits) from a process that did one warm-up run; process_wall times "
            "`python linear_N.py run`.",
            "cached_10: Metaflow has no step cache; `python linear_10.py resume` after a "
            "successful run clones every task of the previous run instead of running it, the "
            "closest equivalent.",
            "numpy_100mb/dataframe_1e6: each step is a separate process, so the producer "
            "(`start`) builds the data inside the run; producer_build_s is that build time, "
            "included in min/median.",
            "queries: runs are created by `python ping_flow.py run` in a loop; lineage follows "
            "Task.parent_tasks from `end` back to `start`, reading each task's `x` artifact "
            "(metadata, not data).",
        ),
    ),
    "prefect": Peer(
        name="prefect",
        requirement=f"prefect=={PINS['prefect']}",
        package="prefect",
        user_import="from prefect import flow, task",
        files=("workload_common.py", "prefect_workloads.py"),
        script="prefect_workloads.py",
        setup=("{python} prefect_workloads.py linear 2",),
        help="{bin}/prefect --help",
        linear_process="{python} prefect_workloads.py linear {n}",
        artifact="{python} prefect_workloads.py artifact {kind} {repeat}",
        cached=(
            "{python} prefect_workloads.py cached",
            "{python} prefect_workloads.py cached",
        ),
        env={
            "PREFECT_HOME": "{home}/prefect",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        },
        notes=(
            "Default local setup: no PREFECT_API_URL, so every process starts Prefect's "
            "temporary local server (SQLite under PREFECT_HOME) and stops it at exit; process "
            "walls include that start.",
            "Result persistence on; with caching off the tasks carry "
            "result_storage_key='{task_run.id}' (Prefect only persists a result that has a "
            "key); cached_10 uses cache_policy=INPUTS + TASK_SOURCE.",
            "Prefect 3.9's flow-run heartbeat thread sleeps in 1 s ticks and is joined when a "
            "sync flow run ends, which rounds a short run up to about 1 s: linear_10 and "
            "linear_100 totals can come out alike. linear_N.run_time is Prefect's own record "
            "of the run (total_run_time: time in Running, i.e. the flow body with its tasks' "
            "result writes, without the run's setup and teardown); its growth from 10 to 100 "
            "steps is the per-task cost.",
            "fanout_20 uses nap.map() on the default ThreadPoolTaskRunner (no worker limit).",
            "stored_bytes is the producer's persisted result file (cloudpickle inside a JSON "
            "result record, base64: about 4/3 of the raw bytes).",
            "queries: runs are created by looping a one-task async flow in one process (a sync "
            "flow run pays the heartbeat join, an async one does not); Prefect "
            "records a task run's upstream only for futures (not for values such as small "
            "ints from direct calls), so the 10-step run that get_run and lineage read passes "
            "futures; lineage follows task_inputs from the last task run to the first. "
            "get_run reads the flow run and its task runs with their result records' metadata.",
        ),
    ),
}


def log(message: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Sample:
    """One fresh process: its wall time, peak RSS and the result line it printed, if any."""

    wall: float
    rss_mib: float
    result: dict[str, Any] | None

    def value(self) -> dict[str, Any]:
        """The result line, which a timed workload command must have printed."""
        if self.result is None:
            raise RuntimeError("the workload printed no result line")
        return self.result


class Project:
    """A peer's venv, project folder and environment, and a way to run commands in them."""

    def __init__(self, peer: Peer, venv: Path, folder: Path) -> None:
        self.peer, self.venv, self.folder = peer, venv, folder
        self.logs = folder / ".logs"
        self.runs = 0
        home = folder / ".home"
        values = {"project": str(folder), "home": str(home)}
        prefixes = ("PYTHON", "VIRTUAL_ENV", "GRISTMILL_", "ZENML_", "PREFECT_", "METAFLOW_")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        self.env.update(
            HOME=str(home),  # anything a tool writes to ~ stays in the project
            PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            VIRTUAL_ENV=str(venv),
            USERNAME="bench",  # Metaflow refuses to run without a user name
            DO_NOT_TRACK="1",
        )
        self.env.update({k: v.format(**values) for k, v in peer.env.items()})

    def argv(self, template: str, **values: Any) -> list[str]:
        python, bin_dir = self.venv / "bin" / "python", self.venv / "bin"
        return [token.format(python=python, bin=bin_dir, **values) for token in template.split()]

    def spawn(self, template: str, timeout: float = PROCESS_TIMEOUT_S, **values: Any) -> Sample:
        """Run one command to completion; raise with the end of its output if it fails."""
        argv = self.argv(template, **values)
        self.runs += 1
        label = re.sub(r"[^\w.-]+", "_", " ".join(Path(a).name for a in argv[:4]))[:60]
        log_path = self.logs / f"{self.runs:03d}-{label}.log"
        with log_path.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                argv,
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a timeout can kill the whole tree
            )
            timer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
            timer.start()
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            timer.cancel()
        process.returncode = code = os.waitstatus_to_exitcode(status)
        text = log_path.read_text(errors="replace")
        if code != 0:
            reason = (
                f"timed out after {timeout:.0f} s" if code == -signal.SIGKILL else f"exit {code}"
            )
            tail = [line for line in text.splitlines() if line.strip()][-3:]
            command = " ".join([Path(argv[0]).name, *argv[1:]])[:160]
            raise RuntimeError(f"{command}: {reason}: {' | '.join(tail)[-400:]}")
        results = [line[len(MARKER) :] for line in text.splitlines() if line.startswith(MARKER)]
        return Sample(wall, usage.ru_maxrss / 1024, json.loads(results[-1]) if results else None)

    def repeat(self, template: str, count: int, **values: Any) -> list[Sample]:
        return [self.spawn(template, **values) for _ in range(count)]


def figure(values: list[float], samples: list[Sample], **extra: Any) -> dict[str, Any]:
    """The shape of every timed figure: min and median seconds, peak RSS, then extras."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "peak_rss_mib": round(max(s.rss_mib for s in samples), 1),
        **extra,
    }


def walls(samples: list[Sample], **extra: Any) -> dict[str, Any]:
    return figure([s.wall for s in samples], samples, **extra)


def reported(samples: list[Sample], key: str, **extra: Any) -> dict[str, Any]:
    return figure([s.value()[key] for s in samples], samples, **extra)


# --- the workloads -------------------------------------------------------------------------


def measure_import(project: Project, repeat: int) -> dict[str, Any]:
    """Cold `import <package>` timed inside a fresh interpreter, plus that process's wall; and
    the same for the import a pipeline file starts with (user_import)."""

    def cold(statement: str) -> list[Sample]:
        code = (
            f"import time; t = time.perf_counter(); {statement}; s = time.perf_counter() - t; "
            f"import json; print({MARKER!r} + json.dumps({{'seconds': s}}))"
        )
        return project.repeat("{python} -c {code}", repeat, code=code)

    samples, user = cold(f"import {project.peer.package}"), cold(project.peer.user_import)
    return reported(
        samples,
        "seconds",
        process_wall=walls(samples),
        user_import=reported(user, "seconds", statement=project.peer.user_import),
    )


def measure_help(project: Project, repeat: int) -> dict[str, Any]:
    return walls(project.repeat(project.peer.help, repeat))


def measure_linear(project: Project, repeat: int, n: int) -> dict[str, Any]:
    """In-process run time after a warm-up run, per step, and a fresh process running it once;
    any other figure the workload reports (Prefect's run_time) comes along."""
    timed = project.repeat(f"{{python}} {project.peer.script} linear-timed {n}", repeat)
    result = {
        "steps": n,
        "total": reported(timed, "seconds"),
        "per_step": figure([s.value()["seconds"] / n for s in timed], timed),
        "process_wall": walls(project.repeat(project.peer.linear_process, repeat, n=n)),
    }
    for key in timed[0].value().keys() - {"seconds"}:
        result[key] = reported(timed, key)
    return result


def measure_fanout(project: Project, repeat: int) -> dict[str, Any]:
    """concurrency = 20 x 0.5 s of sleeping / the run's median wall (in-process, warm)."""

    def one(template: str) -> dict[str, Any]:
        samples = project.repeat(template, repeat)
        result = reported(samples, "seconds")
        result["concurrency"] = round(FANOUT_WORK_S / result["median"], 2)
        return result

    result = one(f"{{python}} {project.peer.script} fanout")
    for name, template in project.peer.fanout_variants.items():
        result[name] = one(template)
    return result


def measure_cached(project: Project, repeat: int) -> dict[str, Any]:
    """Process wall of a re-run with caching on, after one first run; then, untimed, the
    tool's own account of how many steps a re-run takes from its cache."""
    if project.peer.cached is None:
        return {"supported": False}
    first, again = project.peer.cached
    project.spawn(first)
    samples = project.repeat(again, repeat)
    check = project.spawn(f"{{python}} {project.peer.script} cached-check").value()
    return walls(samples, cached_steps=check["cached"], steps=check["steps"])


def measure_artifact(project: Project, repeat: int, kind: str) -> dict[str, Any]:
    """One process times the two-step run and the raw save+load, interleaved, `repeat` times;
    and again with the data stored, for a tool that stores nothing by default."""
    result = artifact_figure(project, project.peer.artifact, repeat, kind)
    if project.peer.artifact_stored:
        result["stored"] = artifact_figure(project, project.peer.artifact_stored, repeat, kind)
    return result


def artifact_figure(project: Project, template: str, repeat: int, kind: str) -> dict[str, Any]:
    sample = project.spawn(template, kind=kind, repeat=repeat)
    result = sample.value()
    raw, tool = result["raw"], result["tool"]
    extra = {k: result[k] for k in ("producer_build_s",) if k in result}
    return figure(
        tool,
        [sample],
        raw_min=min(raw),
        raw_median=statistics.median(raw),
        ratio=round(statistics.median(tool) / statistics.median(raw), 2),
        stored_bytes=result.get("stored_bytes"),
        raw_bytes=result["raw_bytes"],
        **extra,
    )


def measure_queries(project: Project, repeat: int, populate_seconds: float) -> dict[str, Any]:
    """Fill the run store for populate_seconds, then time the reads in fresh processes."""
    if not project.peer.queries:
        return {"supported": False}
    script = project.peer.script
    filled = project.spawn(
        f"{{python}} {script} populate {populate_seconds}",
        timeout=populate_seconds + PROCESS_TIMEOUT_S,
    )
    samples = project.repeat(f"{{python}} {script} queries", repeat)
    result: dict[str, Any] = {"runs": filled.value()["runs"], "populate_s": round(filled.wall, 1)}
    # What each read saw: runs listed, outputs of the run, steps walked back.
    for name, seen in (
        ("list_latest_50", "runs_listed"),
        ("get_run", "outputs"),
        ("lineage", "hops"),
    ):
        counts = sorted({s.value()[f"{name}_count"] for s in samples})
        result[name] = reported(samples, name, **{seen: counts[0] if len(counts) == 1 else counts})
    return result


# --- venvs and projects ---------------------------------------------------------------------


def companions(peer: Peer) -> dict[str, str]:
    """Pinned packages installed beside the peer itself (``name==version`` after the first)."""
    return dict(req.split("==", 1) for req in peer.requirement.split()[1:] if "==" in req)


def installed(python: Path, peer: Peer) -> dict[str, str | None]:
    """Installed versions of the peer, its companions and the extras (None when missing), and
    Python's."""
    names = [peer.package, *companions(peer), *EXTRAS]
    code = (
        "import importlib.metadata as m, json, platform\n"
        "have = {d.metadata['Name'].lower(): d.version for d in m.distributions()}\n"
        f"print(json.dumps({{n: have.get(n) for n in {names!r}}}"
        " | {'python': platform.python_version()}))"
    )
    if not python.exists():
        return {}
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def ensure_venv(peer: Peer, venv: Path) -> dict[str, str | None]:
    """Reuse the venv while it holds the pinned version and the extras; rebuild it otherwise."""
    python = venv / "bin" / "python"
    versions = installed(python, peer)
    pinned = {peer.package: PINS[peer.name], **companions(peer)}
    if all(versions.get(n) == v for n, v in pinned.items()) and all(
        versions.get(e) for e in EXTRAS
    ):
        return versions
    log(f"{peer.name}: creating {venv} and installing {peer.requirement} {' '.join(EXTRAS)}")
    started = time.perf_counter()
    base = shutil.which("python3") or sys.executable
    install_log = venv.parent / f"{peer.name}-install.log"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with install_log.open("w") as out:
        for argv in (
            [base, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", *peer.requirement.split(), *EXTRAS],
        ):
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                lines = install_log.read_text(errors="replace").splitlines()
                errors = [line for line in lines if "ERROR" in line] or lines[-2:]
                raise RuntimeError(f"install failed: {' | '.join(errors)[:400]}")
    log(f"{peer.name}: installed in {time.perf_counter() - started:.0f} s")
    versions = installed(python, peer)
    if versions.get(peer.package) != PINS[peer.name]:
        raise RuntimeError(f"installed {versions.get(peer.package)}, wanted {PINS[peer.name]}")
    return versions


def fresh_project(peer: Peer, folder: Path) -> None:
    """An empty project folder with the peer's workload files (a folder's contents at the root)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / ".logs").mkdir(parents=True)
    (folder / ".home").mkdir()
    for name in peer.files:
        source = HERE / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, folder, dirs_exist_ok=True, ignore=ignore)
        else:
            shutil.copy2(source, folder / name)


# --- putting it together --------------------------------------------------------------------


def run_peer(peer: Peer, work_dir: Path, repeat: int, populate_seconds: float) -> dict[str, Any]:
    """All workloads for one peer; a failing workload is recorded and the rest still run."""
    report: dict[str, Any] = {"peer": peer.name, "version": None, "python": None}
    report.update(results={}, notes=list(peer.notes))
    try:
        venv = Path(sys.prefix) if peer.own_venv else work_dir / "venvs" / peer.name
        versions = (
            installed(venv / "bin" / "python", peer) if peer.own_venv else ensure_venv(peer, venv)
        )
        project = Project(peer, venv, work_dir / "projects" / peer.name)
        fresh_project(peer, project.folder)
        for command in peer.setup:
            project.spawn(command)
    except Exception as error:  # the other peers still run
        report["error"] = str(error)
        log(f"{peer.name}: {error}")
        return report
    report.update(version=versions[peer.package], python=versions["python"])
    report["notes"].append(", ".join(f"{e} {versions[e]}" for e in EXTRAS))
    workloads: dict[str, Callable[[], dict[str, Any]]] = {
        "import": lambda: measure_import(project, repeat),
        "cli_help": lambda: measure_help(project, repeat),
        "linear_10": lambda: measure_linear(project, repeat, 10),
        "linear_100": lambda: measure_linear(project, repeat, 100),
        "fanout_20": lambda: measure_fanout(project, repeat),
        "cached_10": lambda: measure_cached(project, repeat),
        "numpy_100mb": lambda: measure_artifact(project, repeat, "numpy"),
        "dataframe_1e6": lambda: measure_artifact(project, repeat, "pandas"),
        "queries": lambda: measure_queries(project, repeat, populate_seconds),
    }
    results = report["results"]
    for name, measure in workloads.items():
        started = time.perf_counter()
        try:
            results[name] = measure()
        except Exception as error:
            results[name] = {"error": str(error)}
        took = time.perf_counter() - started
        log(f"{peer.name}: {name} in {took:.0f} s: {json.dumps(results[name])[:300]}")
        if took > 120:
            report["notes"].append(f"measuring {name} took {took:.0f} s in all")
    return report


def run_peers(
    work_dir: Path,
    repeat: int = 3,
    peers: list[str] | None = None,
    populate_seconds: float = POPULATE_SECONDS,
) -> list[dict[str, Any]]:
    """Benchmark gristmill and the peers (all of PEERS by default), one after another; one
    dict per tool."""
    reports = []
    for name in peers or list(PEERS):
        started = time.perf_counter()
        log(f"{name}: start")
        reports.append(run_peer(PEERS[name], work_dir.resolve(), repeat, populate_seconds))
        log(f"{name}: done in {time.perf_counter() - started:.0f} s")
    return reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per figure")
    parser.add_argument("--peer", action="append", choices=sorted(PEERS), help="repeatable")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument(
        "--populate-seconds",
        type=float,
        default=POPULATE_SECONDS,
        help="time per peer spent creating runs for the query figures",
    )
    args = parser.parse_args()
    reports = run_peers(args.work_dir, args.repeat, args.peer, args.populate_seconds)
    print(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
