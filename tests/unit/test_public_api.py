import subprocess
import sys

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
