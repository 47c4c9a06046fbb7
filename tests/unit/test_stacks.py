"""Stacks, components and secrets from the command line and from Python: validation, the
default stack, what runs record, and secrets that never show."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gristmill.cli.main import cli
from gristmill.project import Project


def gm(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_the_default_stack_always_exists(project: Project) -> None:
    stacks = json.loads(gm("stack", "list", "--json").stdout)
    assert stacks == [
        {
            "name": "default",
            "active": True,
            "components": {
                "artifact_store": {"name": "local", "flavor": "local"},
                "orchestrator": {"name": "local", "flavor": "local"},
            },
        }
    ]
    gm("stack", "delete", "default", code=2)


def test_register_components_and_a_stack_then_run_on_it(project: Project, tmp_path: Path) -> None:
    other_root = tmp_path / "elsewhere"
    gm(
        "component",
        "register",
        "artifact_store",
        "shelf",
        "--flavor",
        "local",
        f"root={other_root}",
    )
    gm(
        "component",
        "register",
        "orchestrator",
        "threads",
        "--flavor",
        "local_parallel",
        "max_workers=3",
    )
    gm("stack", "register", "shelf-stack", "-o", "threads", "-a", "shelf", "--set")
    assert json.loads(gm("stack", "describe", "--json").stdout)["name"] == "shelf-stack"
    described = json.loads(gm("component", "describe", "orchestrator", "threads", "--json").stdout)
    assert described["settings"] == {"max_workers": 3}
    assert {s["name"] for s in described["flavor_settings"]} == {"max_workers"}

    from fixtures.pipelines import summing

    run = summing(n=3)
    assert run.stack["name"] == "shelf-stack"
    assert run.orchestrator == "local_parallel"
    assert run.steps["total"].output().uri.startswith(str(other_root))
    assert run.steps["total"].output().load() == 3.0

    gm("stack", "set", "default")
    back = summing(n=3)
    assert back.stack["name"] == "default"
    assert {s.status for s in back.steps.values()} == {"completed"}  # other store: no cache hit
    listed = json.loads(gm("runs", "list", "--json").stdout)
    assert [r["stack"] for r in listed] == ["default", "shelf-stack"]
    # a run's artifacts load from the stack it ran on, whatever is active now
    from gristmill import Client

    assert Client().get_run(run.id).steps["total"].output().load() == 3.0


def test_stack_environment_override_copy_export_import(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gm(
        "component",
        "register",
        "artifact_store",
        "shelf",
        "--flavor",
        "local",
        f"root={tmp_path / 's'}",
    )
    gm("stack", "register", "first", "-o", "local", "-a", "shelf")
    gm("stack", "copy", "first", "second")
    monkeypatch.setenv("GRISTMILL_STACK", "second")
    assert json.loads(gm("stack", "describe", "--json").stdout)["name"] == "second"
    monkeypatch.delenv("GRISTMILL_STACK")
    exported = tmp_path / "stack.yaml"
    gm("stack", "export", "first", "-o", str(exported))
    text = exported.read_text()
    assert "flavor: local" in text and "shelf" in text
    gm("stack", "import", str(exported), code=2)  # the name is taken
    gm("stack", "import", str(exported), "--name", "third")
    assert (
        json.loads(gm("stack", "describe", "third", "--json").stdout)["components"][
            "artifact_store"
        ]["name"]
        == "shelf"
    )
    exported.write_text(text.replace(str(tmp_path / "s"), str(tmp_path / "changed")))
    clash = gm("stack", "import", str(exported), "--name", "fourth", code=2)
    assert "registered with other settings" in clash.output
    gm("stack", "delete", "third")
    gm("stack", "describe", "third", "--json", code=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["component", "register", "orchestrater", "x", "--flavor", "local"],
            "unknown component type 'orchestrater' — did you mean 'orchestrator'?",
        ),
        (
            ["component", "register", "orchestrator", "x", "--flavor", "locl"],
            "unknown orchestrator flavor 'locl' — did you mean 'local'?",
        ),
        (
            [
                "component",
                "register",
                "orchestrator",
                "x",
                "--flavor",
                "local_parallel",
                "max_worker=2",
            ],
            "has no setting 'max_worker' — did you mean 'max_workers'?",
        ),
        (
            [
                "component",
                "register",
                "orchestrator",
                "x",
                "--flavor",
                "local_parallel",
                "max_workers=0",
            ],
            "max_workers: Input should be greater than or equal to 1",
        ),
        (
            [
                "component",
                "register",
                "artifact_store",
                "x",
                "--flavor",
                "s3",
                "path=s3://b/p",
                "secret=plain-text-value",
            ],
            "'secret' is a credential: keep it in a secret",
        ),
        (
            ["component", "register", "artifact_store", "x", "--flavor", "s3", "path=bucket/p"],
            "path: String should match pattern",
        ),
        (
            ["component", "register", "orchestrator", "local", "--flavor", "local"],
            "exists: change it with `gristmill component update",
        ),
        (["stack", "register", "s", "-a", "local"], "a stack needs an orchestrator: add -o NAME"),
        (
            ["stack", "register", "s", "-o", "locl", "-a", "local"],
            "no orchestrator named 'locl' — did you mean 'local'?",
        ),
        (["stack", "set", "prod"], "no stack named 'prod'"),
        (["component", "delete", "orchestrator", "local"], "is used by stack(s) default"),
        (["secret", "create", "bad name", "k=v"], "secret name 'bad name' is not valid"),
        (["secret", "get", "nope"], "no secret named 'nope'"),
    ],
)
def test_errors(project: Project, args: list[str], message: str) -> None:
    gm("stack", "list")  # the default stack and its components exist
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (1, 2)
    assert message in " ".join(result.output.split())


def test_a_missing_integration_names_the_pip_command(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gcsfs" else real(name, *a)
    )
    result = CliRunner().invoke(
        cli, ["component", "register", "artifact_store", "g", "--flavor", "gcs", "path=gs://b/x"]
    )
    assert result.exit_code == 1
    assert 'pip install "gristmill[gcs]"' in result.output
    flavors = json.loads(gm("component", "flavors", "artifact_store", "--json").stdout)
    assert {f["flavor"]: f["state"] for f in flavors}["gcs"] == 'needs pip install "gristmill[gcs]"'


SECRET = "s3cr3t-value-that-must-not-leak"


def test_secrets_are_encrypted_and_never_shown(project: Project, tmp_path: Path) -> None:
    key_file = project.directory / "secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    gm("secret", "create", "paths", f"root={SECRET}", "other=xyz1-other-value")
    listed = json.loads(gm("secret", "list", "--json").stdout)
    assert listed[0]["name"] == "paths" and listed[0]["keys"] == ["other", "root"]
    assert gm("secret", "get", "paths").stdout == "other=***\nroot=***\n"
    assert f"root={SECRET}" in gm("secret", "get", "paths", "--reveal").stdout
    database = project.directory / "metadata.db"
    with sqlite3.connect(database) as conn:
        dump = "\n".join(conn.iterdump())
    assert SECRET not in dump and "paths" in dump
    gm("secret", "update", "paths", "extra=extra-value-9", "--remove", "other")
    assert json.loads(gm("secret", "list", "--json").stdout)[0]["keys"] == ["extra", "root"]

    # a component refers to it; the stored settings, describe, export, info and run records
    # show the reference, never the value
    gm(
        "component",
        "register",
        "artifact_store",
        "vault",
        "--flavor",
        "local",
        "root={{ secret.paths.root }}",
    )
    gm("stack", "register", "secretive", "-o", "local", "-a", "vault")
    outputs = [
        gm("component", "describe", "artifact_store", "vault").output,
        gm("component", "list", "--json").output,
        gm("stack", "describe", "secretive", "--json").output,
        gm("stack", "export", "secretive").output,
        gm("info", "--json").output,
    ]
    for text in outputs:
        assert SECRET not in text
    assert "{{ secret.paths.root }}" in outputs[0]


def test_a_secret_in_an_error_or_a_log_is_masked(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / f"blocked-{SECRET}"
    blocker.write_text("a file, so no folder can be made below it")
    gm("secret", "create", "paths", f"root={blocker}/artifacts")
    gm(
        "component",
        "register",
        "artifact_store",
        "vault",
        "--flavor",
        "local",
        "root={{ secret.paths.root }}",
    )
    gm("stack", "register", "secretive", "-o", "local", "-a", "vault")
    (project.root / "leaky.py").write_text(
        "from gristmill import step, pipeline\n"
        "@step\n"
        "def one() -> int:\n"
        "    return 1\n"
        "@pipeline\n"
        "def leaky():\n"
        "    one()\n"
    )
    monkeypatch.chdir(project.root)
    result = CliRunner().invoke(cli, ["run", "leaky:leaky", "--stack", "secretive"])
    assert result.exit_code != 0
    assert SECRET not in result.output
    assert "***" in result.output

    # a step that prints a secret value this process resolved: its stored log is masked
    from gristmill import pipeline, step

    gm("secret", "create", "token", f"value={SECRET}")
    project.secrets().get("token")

    @step
    def chatty() -> int:
        print(f"the token is {SECRET}")
        return 1

    @pipeline
    def talks() -> None:
        chatty()

    run = talks()
    assert SECRET not in run.steps["chatty"].logs()
    assert "the token is ***" in run.steps["chatty"].logs()


def test_a_wrong_key_is_explained(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    gm("secret", "create", "creds", "token=a-token-of-some-length")
    from gristmill.project import create_key_file

    other = project.directory / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", create_key_file(other).read_text().strip())
    result = CliRunner().invoke(cli, ["secret", "get", "creds"])
    assert result.exit_code == 1
    assert "encrypted with another key" in result.output


def test_info(project: Project) -> None:
    data = json.loads(gm("info", "--json").stdout)
    assert data["stack"]["name"] == "default"
    assert data["store"].startswith("sqlite:///")
    assert data["integrations"]["s3"]["package"] == "s3fs"
    assert "Integrations" in gm("info").output
