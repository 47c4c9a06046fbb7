"""`make bench-peers`: gristmill beside ZenML, Kedro, Metaflow and Prefect 3, each in its own
virtualenv created by the benchmark, the same workloads written idiomatically for each, all in
one run on one machine (benchmarks/peers/driver.py does the measuring). Writes
benchmarks/results/peers.json and the comparison table in README.md.

    python benchmarks/compare.py [--repeat 3] [--populate-seconds 240] [--peer zenml ...]
    python benchmarks/compare.py --table-only   # README table from the last results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))

from driver import PEERS, run_peers  # noqa: E402

README = HERE.parent / "README.md"
START, END = "<!-- bench:peers:start -->", "<!-- bench:peers:end -->"


def stored(workload: str) -> Any:
    """A tool's artifact figure with the data stored (its `stored` variant where the tool's
    default stores nothing)."""
    return lambda r: r[workload].get("stored", r[workload])["median"]


def unstored(workload: str) -> Any:
    """The in-memory figure of a tool whose default stores nothing; None for the others."""
    return lambda r: r[workload]["median"] if "stored" in r[workload] else None


# (label, how to read a tool's figure in seconds from its results[, how to read gristmill's])
ROWS: list[tuple[Any, ...]] = [
    ("`import` (in-process)", lambda r: r["import"]["median"]),
    ("`from … import pipeline, step`", lambda r: r["import"]["user_import"]["median"]),
    ("CLI `--help` (process)", lambda r: r["cli_help"]["median"]),
    ("10 steps, in-process", lambda r: r["linear_10"]["total"]["median"]),
    ("100 steps, in-process", lambda r: r["linear_100"]["total"]["median"]),
    ("overhead per step (100 steps)", lambda r: r["linear_100"]["per_step"]["median"]),
    ("10 steps, `python pipeline.py`", lambda r: r["linear_10"]["process_wall"]["median"]),
    ("100 steps, `python pipeline.py`", lambda r: r["linear_100"]["process_wall"]["median"]),
    ("fan-out 20 x 0.5 s", lambda r: r["fanout_20"]["median"]),
    ("cached re-run, 10 steps (process)", lambda r: r["cached_10"]["median"]),
    ("100 MB numpy between two steps, stored", stored("numpy_100mb")),
    (
        "… in memory, nothing stored (gristmill: stored)",
        unstored("numpy_100mb"),
        stored("numpy_100mb"),
    ),
    ("1e6x10 DataFrame between two steps, stored", stored("dataframe_1e6")),
    (
        "… in memory, nothing stored (gristmill: stored)",
        unstored("dataframe_1e6"),
        stored("dataframe_1e6"),
    ),
    ("list the latest 50 runs", lambda r: r["queries"]["list_latest_50"]["median"]),
    ("one run with its steps and artifacts", lambda r: r["queries"]["get_run"]["median"]),
    ("lineage, 9 hops", lambda r: r["queries"]["lineage"]["median"]),
]


def cell(report: dict[str, Any], read: Any) -> float | None:
    try:
        value = read(report["results"])
    except (KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s"


def times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def table(reports: list[dict[str, Any]]) -> list[str]:
    ours = next(r for r in reports if r["peer"] == "gristmill")
    peers = [r for r in reports if r["peer"] != "gristmill"]
    header = (
        "| workload | gristmill | "
        + " | ".join(f"{r['peer']} {r.get('version') or ''}" for r in peers)
        + " |"
    )
    lines = [header, "| --- | ---: | " + " | ".join("---:" for _ in peers) + " |"]
    for label, read, *own in ROWS:
        mine = cell(ours, own[0] if own else read)
        cells = []
        for report in peers:
            theirs = cell(report, read)
            if theirs is None or mine is None:
                cells.append(seconds(theirs))
            else:
                cells.append(f"{seconds(theirs)} ({times(theirs / mine)})")
        lines.append(f"| {label} | {seconds(mine)} | " + " | ".join(cells) + " |")
    runs = {r["peer"]: r["results"].get("queries", {}).get("runs") for r in reports}
    concurrency = {r["peer"]: r["results"].get("fanout_20", {}).get("concurrency") for r in reports}
    lines.append("")
    lines.append(
        "Parenthesized: the peer's time divided by gristmill's (above 1: gristmill is faster). "
        "Runs in each store for the queries: "
        + ", ".join(f"{k} {v}" for k, v in runs.items() if v)
        + ". Fan-out concurrency (10 s of sleeping / wall): "
        + ", ".join(f"{k} {v}" for k, v in concurrency.items() if v)
        + ". Kedro tracks nothing (no store, no cache, artifacts passed in memory): n/a where a "
        "workload needs tracking; its stored artifact figures declare the hand-off in its "
        "catalog (ParquetDataset, PickleDataset), as a Kedro user does to keep it, and the "
        "in-memory rows show its default, which keeps nothing. Each tool's notes (how every workload maps onto it) are in "
        "`benchmarks/results/peers.json`."
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--populate-seconds", type=float, default=240.0)
    parser.add_argument("--peer", action="append", choices=sorted(set(PEERS) - {"gristmill"}))
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="measure nothing: rewrite the README table from benchmarks/results/peers.json",
    )
    args = parser.parse_args()
    saved = HERE / "results" / "peers.json"
    if args.table_only:
        recorded = json.loads(saved.read_text())
        machine, reports = recorded["machine"], recorded["reports"]
    else:
        started = time.perf_counter()
        reports = run_peers(
            HERE / ".work",
            args.repeat,
            ["gristmill", *(args.peer or [p for p in PEERS if p != "gristmill"])],
            args.populate_seconds,
        )
        machine = {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "minutes": round((time.perf_counter() - started) / 60, 1),
            "repeat": args.repeat,
        }
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(json.dumps({"machine": machine, "reports": reports}, indent=2) + "\n")
    lines = table(reports)
    print("\n".join(lines))
    if not args.no_readme:
        intro = (
            f"Measured by `make bench-peers` on {machine['date']} ({machine['cpus']} CPUs, Python "
            f"{machine['python']}, {machine['platform']}), every tool in its own virtualenv, medians of "
            f"{machine.get('repeat', args.repeat)} fresh processes:"
        )
        text = README.read_text()
        block = "\n".join([START, intro, "", *lines, END])
        if START in text:
            before, rest = text.split(START, 1)
            text = before + block + rest.split(END, 1)[1]
        else:
            text += "\n" + block + "\n"
        README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
