import os
import subprocess
import sys
from pathlib import Path

import gristmill

PINNED = [
    "ArtifactConfig",
    "ArtifactVersion",
    "Client",
    "DVCPath",
    "ExternalArtifact",
    "GristmillError",
    "Model",
    "ModelStages",
    "ModelVersion",
    "Pipeline",
    "Resources",
    "Retry",
    "Run",
    "RunConfig",
    "RunFailedError",
    "Step",
    "StepConfig",
    "StepContext",
    "StepOptions",
    "StepRun",
    "__version__",
    "get_step_context",
    "load_pipeline",
    "log_metadata",
    "log_metric",
    "log_metrics",
    "pipeline",
    "step",
]


def test_public_api_is_pinned() -> None:
    assert sorted(gristmill.__all__) == PINNED
    for name in PINNED:
        assert getattr(gristmill, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        gristmill.nonexistent  # noqa: B018
    except AttributeError as exc:
        assert "nonexistent" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light() -> None:
    """Nothing heavy is imported by `import gristmill` or by defining steps and pipelines."""
    code = (
        "import sys, gristmill\n"
        "from gristmill import step, pipeline\n"
        "heavy = ['sqlalchemy', 'alembic', 'fsspec', 'pydantic', 'rich', 'numpy', 'pandas', 'pyarrow', 'click']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_is_light() -> None:
    code = (
        "import sys\n"
        "from gristmill.cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print([m for m in ('sqlalchemy', 'rich', 'fsspec', 'pydantic') if m in sys.modules], file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "[]"
    assert "runs" in out.stdout


def test_a_run_on_the_embedded_store_imports_no_sqlalchemy(tmp_path: Path) -> None:
    """The first run (which creates the store: SQLAlchemy and Alembic), then in a new process a
    run, its cached re-run and the run read back: statements compiled ahead of time on the
    sqlite3 module's connections, no SQLAlchemy. A read of something else imports it."""
    (tmp_path / "flow.py").write_text(
        "import sys\n"
        "from gristmill import pipeline, step\n"
        "@step\n"
        "def one() -> int:\n"
        "    return 1\n"
        "@step\n"
        "def two(x: int) -> int:\n"
        "    return x + 1\n"
        "@pipeline\n"
        "def flow() -> None:\n"
        "    two(one())\n"
        "if __name__ == '__main__':\n"
        "    first = flow()\n"
        "    again = flow()\n"
        "    print(first.status, sorted(s.status for s in again.steps.values()) if 'read' in sys.argv else '')\n"
        "    print('sqlalchemy' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    run = [sys.executable, "flow.py"]
    subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    out = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["completed ", "False"], out.stdout + out.stderr
    out = subprocess.run(
        [*run, "read"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:2] == ["completed ['cached', 'cached']", "True"], out.stderr
