"""The whole story from the command line: a team stack with a PostgreSQL metadata store and
an S3 artifact store (credentials in a secret), the quickstart run on it, back to the default
stack, and both runs visible with their stacks. Real PostgreSQL, real S3-compatible server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.project import Project
from gristmill.testing.services import S3Server

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart"


def test_s3_and_postgres_stack_from_the_cli(
    tmp_path: Path, project: Project, postgres_database: str, s3: S3Server, s3_bucket: str
) -> None:
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["GRISTMILL_CACHE_DIR"] = str(tmp_path / "cache")
    command = str(Path(sys.executable).with_name("gristmill"))

    def gristmill(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [command, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == code, result.stdout + result.stderr
        return result

    gristmill("init")
    gristmill("store", "set", postgres_database)
    gristmill("secret", "create", "s3", f"key={s3.key}", f"secret={s3.secret}")
    gristmill(
        "component",
        "register",
        "artifact_store",
        "team-bucket",
        "--flavor",
        "s3",
        f"path=s3://{s3_bucket}/gristmill",
        f"endpoint_url={s3.endpoint_url}",
        f"region={s3.region}",
        "key={{ secret.s3.key }}",
        "secret={{ secret.s3.secret }}",
    )
    gristmill("stack", "register", "team", "-o", "local", "-a", "team-bucket")
    gristmill("stack", "set", "team")
    info = json.loads(gristmill("info", "--json").stdout)
    assert info["store"].startswith("postgresql+psycopg://")
    assert info["stack"]["components"]["artifact_store"]["flavor"] == "s3"

    on_team = json.loads(gristmill("run", "pipeline:training", "--json").stdout)
    assert on_team["status"] == "completed"
    objects = s3.client().list_objects_v2(Bucket=s3_bucket)["Contents"]  # type: ignore[attr-defined]
    assert any(o["Key"].endswith("data.parquet") for o in objects)
    assert any(o["Key"].endswith(".gristmill-complete") for o in objects)

    gristmill("stack", "set", "default")
    on_default = json.loads(gristmill("run", "pipeline:training", "--json").stdout)
    assert on_default["status"] == "completed"
    assert {s["status"] for s in on_default["steps"]} == {
        "completed"
    }  # nothing shared across stores

    runs = json.loads(gristmill("runs", "list", "--json").stdout)
    assert [(r["id"], r["stack"]) for r in runs] == [
        (on_default["id"], "default"),
        (on_team["id"], "team"),
    ]
    # the team run's model loads back from S3, with the active stack being another one
    model = json.loads(gristmill("artifacts", "show", "model:1", "--json").stdout)
    assert model["uri"].startswith(f"s3://{s3_bucket}/gristmill/")
    metrics = gristmill("artifacts", "load", "metrics:1").stdout
    assert "accuracy" in metrics
    shown = gristmill("runs", "show", on_team["id"], "--config").stdout
    assert s3.secret not in shown and "{{ secret.s3.secret }}" in shown
    # the runs went to PostgreSQL: the SQLite file `gristmill init` made holds none
    import sqlite3

    with sqlite3.connect(folder / ".gristmill" / "metadata.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
