"""A ~100 MB PyTorch state_dict passed between two steps (stored as safetensors, hashed,
published, loaded by the next step) against torch's own ``torch.save`` + ``torch.load`` of the
same dict on the same disk. Standalone: ``.venv/bin/python benchmarks/torch_state_dict.py
[REPEAT]`` prints one JSON object (min and median seconds of each, and their ratio). Each
measurement runs in a fresh temporary project under ``benchmarks/.work/``."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from gristmill import pipeline, step
from gristmill.testing import temporary_project

ROOT = Path(__file__).resolve().parents[1]
LAYERS, WIDTH, DEPTH = 5, 2560, 2048  # 5 x (2560 x 2048 + 2560) float32 = ~105 MB


def make_state_dict() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    for i in range(LAYERS):
        state[f"layers.{i}.weight"] = torch.randn(WIDTH, DEPTH, generator=generator)
        state[f"layers.{i}.bias"] = torch.randn(WIDTH, generator=generator)
    return state


STATE = make_state_dict()
BYTES = sum(t.numel() * t.element_size() for t in STATE.values())


def consume(state: dict[str, torch.Tensor]) -> float:
    """What the next step does with it: reads every tensor."""
    return float(sum(float(t.sum()) for t in state.values()))


@step(cache=False)
def produce() -> dict:
    return STATE


@step(cache=False)
def use(state: dict) -> float:
    return consume(state)


@pipeline
def passing() -> None:
    use(produce())


def torch_round_trip(folder: Path) -> float:
    path = folder / "state.pt"
    torch.save(STATE, path)
    return consume(torch.load(path, weights_only=True))


def stats(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4)}


def main(repeat: int) -> dict[str, object]:
    work_root = ROOT / "benchmarks" / ".work"
    work_root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, list[float]] = {"torch": [], "gristmill": []}
    materializer, stored = "", 0
    for _ in range(repeat):
        work = Path(tempfile.mkdtemp(prefix="torch-", dir=work_root))
        try:
            os.sync()  # each from a clean page-cache writeback state
            started = time.perf_counter()
            torch_round_trip(work)
            timings["torch"].append(time.perf_counter() - started)
            with temporary_project(work / "project"):
                passing()  # warm: imports, store, materializer registry
                os.sync()
                started = time.perf_counter()
                run = passing()
                timings["gristmill"].append(time.perf_counter() - started)
                output = run.steps["produce"].output()
                materializer, stored = output.materializer, output.size
        finally:
            shutil.rmtree(work, ignore_errors=True)
    raw, ours = stats(timings["torch"]), stats(timings["gristmill"])
    return {
        "benchmark": "PyTorch state_dict between two steps vs torch.save + torch.load",
        "state_dict_bytes": BYTES,
        "stored_bytes": stored,
        "materializer": materializer,
        "repeat": repeat,
        "torch_save_load_s": raw,
        "gristmill_two_steps_s": ours,
        "ratio_median": round(ours["median"] / raw["median"], 3),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
