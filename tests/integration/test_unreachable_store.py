"""An S3 artifact store nobody answers for (a closed port on loopback): the run fails soon,
with one clear error naming the store and the cause, recorded on the run and its step, and a
short console output (no client-library tracebacks, no thread exceptions)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PIPELINE = """
from gristmill import pipeline, step


@step
def one() -> int:
    return 1


@pipeline
def single() -> None:
    one()


if __name__ == "__main__":
    single()
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_an_unreachable_s3_store_fails_the_run_with_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    folder = tmp_path / "offline-project"
    folder.mkdir()
    (folder / "single.py").write_text(PIPELINE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "AWS_"))}
    env.update(
        GRISTMILL_CACHE_DIR=str(tmp_path / "cache"),
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
    )
    command = str(Path(sys.executable).with_name("gristmill"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    for args in (
        ("init",),
        (
            "component",
            "register",
            "artifact_store",
            "offline",
            "--flavor",
            "s3",
            "path=s3://bucket/prefix",
            f"endpoint_url=http://127.0.0.1:{_closed_port()}",
            "region=us-east-1",
        ),
        ("stack", "register", "offline", "-o", "local", "-a", "offline"),
        ("stack", "set", "offline"),
    ):
        done = run(command, *args)
        assert done.returncode == 0, done.stdout + done.stderr

    began = time.monotonic()
    done = run(sys.executable, "single.py")
    elapsed = time.monotonic() - began
    console = done.stdout + done.stderr

    assert done.returncode == 1, console
    assert elapsed < 20, f"took {elapsed:.1f} s"
    assert "RunFailedError" in console
    assert "cannot reach artifact store s3://bucket/prefix: Could not connect" in console
    assert len(console.splitlines()) < 40, console
    for noise in ("botocore", "aiohttp", "aiobotocore", "Exception in thread"):
        assert noise not in console, console

    monkeypatch.setenv("GRISTMILL_PROJECT", str(folder))  # read what was recorded
    from gristmill import Client

    recorded = Client().get_run("latest")
    assert recorded.status == "failed"
    assert "cannot reach artifact store s3://bucket/prefix" in (recorded.error or "")
    step = recorded.steps["one"]
    assert step.status == "failed"
    assert "ArtifactStoreError: cannot reach artifact store s3://bucket/prefix" in (
        step.error or ""
    )
    assert "botocore" not in (step.error or "")
