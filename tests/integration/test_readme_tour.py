"""The README's tour runs as printed, top to bottom, in a fresh copy of examples/quickstart.

The blocks of the tour section (from "## A five-minute tour" to the next "## " heading), in
order:
- a ```python or ```yaml block whose first line is ``# NAME`` is the file NAME: when the
  example ships NAME, the rest of the block must equal it (README and example never drift);
  otherwise it is written into the folder;
- a ```bash block is run by bash (``set -ex``), with the venv's ``gristmill`` first on PATH;
- any other ```python block is run by the venv's Python;
- a block right after an HTML comment ``<!-- tour: skip ... -->`` is not run.
Each must exit 0; the quickstart's first run must not warn about pickling."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gristmill.project import Project

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "quickstart"
pytestmark = pytest.mark.integration

_BLOCK = re.compile(
    r"(?P<skip><!-- tour: skip[^>]*-->\s*\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)\n```", re.S
)
_FILE = re.compile(r"# (?P<name>[\w.-]+\.(?:py|ya?ml))\n")


@dataclass
class Block:
    lang: str
    body: str
    skip: bool

    @property
    def file_name(self) -> str | None:
        found = _FILE.match(self.body) if self.lang in ("python", "yaml") else None
        return found.group("name") if found else None

    @property
    def file_text(self) -> str:
        return self.body.split("\n", 1)[1] + "\n"


def tour_blocks() -> list[Block]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## A five-minute tour")
    end = text.index("\n## ", start + 1)
    return [
        Block(m.group("lang"), m.group("body"), bool(m.group("skip")))
        for m in _BLOCK.finditer(text[start:end])
    ]


def test_the_tour_has_the_blocks_this_test_expects() -> None:
    blocks = tour_blocks()
    files = [b.file_name for b in blocks if b.file_name]
    assert files[:4] == ["steps.py", "pipeline.py", "pipeline.yaml", "run.yaml"]
    assert sum(b.lang == "bash" for b in blocks) >= 4
    assert any(b.skip for b in blocks)


def test_the_readme_tour_runs_as_printed(tmp_path: Path, project: Project) -> None:
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    bin_dir = Path(sys.executable).parent
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_") and k != "PYTHONPATH"
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["GRISTMILL_CACHE_DIR"] = str(tmp_path / "cache")
    ran = 0
    first_output = None
    for index, block in enumerate(tour_blocks()):
        if block.skip:
            continue
        where = f"README tour block {index} ({block.lang}):\n{block.body}"
        name = block.file_name
        if name is not None:
            shipped = EXAMPLE / name
            if shipped.exists():
                assert block.file_text == shipped.read_text(encoding="utf-8"), (
                    f"{where}\n\ndiffers from examples/quickstart/{name}"
                )
            (folder / name).write_text(block.file_text, encoding="utf-8")
            continue
        if block.lang == "bash":
            command = ["bash", "-c", "set -ex\n" + block.body]
        elif block.lang == "python":
            command = [str(bin_dir / "python"), "-c", block.body]
        else:
            continue
        done = subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"{where}\n\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        ran += 1
        if first_output is None and block.lang == "bash":
            first_output = done.stdout + done.stderr
    assert ran >= 5
    # The first run of the flagship example stores nothing with pickle, so it warns about none.
    assert first_output is not None and "python pipeline.py" in first_output
    assert "pickle" not in first_output.lower()
    assert (folder / "model.json").exists()  # `artifacts load model:1 --to model.json`
