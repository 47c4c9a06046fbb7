"""Helpers shared by the peer workload scripts; each script runs inside its peer's own venv.

The driver copies this file into every peer's project folder beside the workload script, so it
must import nothing but the standard library at module level (numpy and pandas lazily).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = "PEER_BENCH_RESULT "
NUMPY_VALUES = 100 * 1024 * 1024 // 8
FRAME_ROWS, FRAME_COLUMNS = 1_000_000, 10
WARM_STEPS = 2  # the small pipeline run first so imports, store and server are warm


def emit(**values: Any) -> None:
    """Print the one line the driver parses; the tools log freely around it."""
    print(MARKER + json.dumps(values), flush=True)


def make_data(kind: str) -> Any:
    """A 100 MB float64 array ("numpy") or a 1e6 x 10 float64 DataFrame ("pandas")."""
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "numpy":
        return rng.random(NUMPY_VALUES)
    import pandas as pd

    return pd.DataFrame({f"c{i}": rng.random(FRAME_ROWS) for i in range(FRAME_COLUMNS)})


def consume(value: Any) -> float:
    """What the consumer step returns: the array's sum, or the sum of the frame's first column."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return float(value.sum())
    return float(value["c0"].sum())


def emit_query_timings(queries: dict[str, Callable[[], int]]) -> None:
    """Time each client query once after a warm-up call; emit each one's seconds and the count
    it returned (``<name>`` and ``<name>_count``), so the driver can check what was read."""
    results: dict[str, Any] = {}
    for name, query in queries.items():
        query()
        started = time.perf_counter()
        results[f"{name}_count"] = query()
        results[name] = time.perf_counter() - started
    emit(**results)


def dir_bytes(path: Path) -> int:
    """Bytes of all files under ``path`` (or of ``path`` itself when it is a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _raw_round_trip(data: Any, folder: Path) -> None:
    """What a user does without any tool: np.save + np.load, or to_parquet + read_parquet."""
    import numpy as np

    if isinstance(data, np.ndarray):
        np.save(folder / "a.npy", data)
        consume(np.load(folder / "a.npy"))
    else:
        import pandas as pd

        data.to_parquet(folder / "a.parquet")
        consume(pd.read_parquet(folder / "a.parquet"))


def time_round_trips(
    data: Any, folder: Path, repeat: int, run_tool: Callable[[], Any]
) -> tuple[dict[str, Any], Any]:
    """Interleave raw and tool round trips on the same disk; the timings and the last run.

    os.sync() before each timing so neither pays for the other's pending writeback.
    """
    raw: list[float] = []
    tool: list[float] = []
    raw_bytes = 0
    last = None
    for index in range(repeat):
        scratch = folder / f"raw-{index}"
        scratch.mkdir(parents=True)
        os.sync()
        started = time.perf_counter()
        _raw_round_trip(data, scratch)
        raw.append(time.perf_counter() - started)
        raw_bytes = dir_bytes(scratch)
        shutil.rmtree(scratch)
        os.sync()
        started = time.perf_counter()
        last = run_tool()
        tool.append(time.perf_counter() - started)
    return {"raw": raw, "tool": tool, "raw_bytes": raw_bytes}, last
