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
            "setting 'max_workers' must be at least 1, not 0",
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
            "setting 'path' must look like s3://bucket/prefix, not 'bucket/p'",
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
    # Bad input exits 2 (usage); a name that is not there, or a refusal, exits 1.
    refused = message.startswith("no ") or "is used by" in message
    assert result.exit_code == (1 if refused else 2), result.output
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
    assert result.exit_code == 1, result.output
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


# -- one path from a flavor name to a component ------------------------------------------------


class _NeedsAMissingPackage:
    """Stands in for an integration whose extra is not installed."""


def _fake_flavor() -> type:
    from gristmill.orchestrators.local import LocalOrchestrator

    class NeedsAMissingPackage(LocalOrchestrator):
        flavor = "needs_missing"
        requires = ("gristmill_no_such_package_anywhere",)
        extra = "nosuchextra"

    return NeedsAMissingPackage


@pytest.fixture
def missing_flavor() -> Any:
    from gristmill.stacks.flavors import register_flavor, unregister_flavor

    register_flavor("orchestrator", "needs_missing", _fake_flavor())
    yield "needs_missing"
    unregister_flavor("orchestrator", "needs_missing")


PIP_LINE = 'pip install "gristmill[nosuchextra]"'


def test_with_options_validates_orchestrator_settings(project: Project) -> None:
    from fixtures.pipelines import summing
    from gristmill.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        summing.with_options(orchestrator={"flavor": "local_parallel", "bogus": 1})(n=2)
    message = str(caught.value)
    assert "has no setting 'bogus'" in message
    assert "'max_workers'" in message  # the valid settings, since nothing is close
    with pytest.raises(ConfigError, match="did you mean 'max_workers'"):
        summing.with_options(orchestrator={"flavor": "local_parallel", "max_worker": 2})(n=2)
    with pytest.raises(ConfigError, match="takes no settings, but was given 'workers'"):
        summing.with_options(orchestrator={"flavor": "local", "workers": 2})(n=2)
    # nothing ran
    assert json.loads(gm("runs", "list", "--json").stdout) == []


def test_a_missing_package_is_the_same_error_on_every_path(
    project: Project, missing_flavor: str
) -> None:
    from fixtures.pipelines import summing
    from gristmill.errors import MissingIntegrationError

    # 1. gristmill component register
    result = CliRunner().invoke(
        cli, ["component", "register", "orchestrator", "nightly", "--flavor", missing_flavor]
    )
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # the console wraps long lines
    assert PIP_LINE in output
    assert "gristmill_no_such_package_anywhere" in output
    flavors = json.loads(gm("component", "flavors", "orchestrator", "--json").stdout)
    assert {f["flavor"]: f["state"] for f in flavors}[missing_flavor] == f"needs {PIP_LINE}"

    # 2. with_options(orchestrator=...)
    with pytest.raises(MissingIntegrationError) as caught:
        summing.with_options(orchestrator={"flavor": missing_flavor})(n=2)
    assert PIP_LINE in str(caught.value)
    assert caught.value.pip == PIP_LINE

    # 3. a stack whose component was registered where the extra was installed
    store = project.store()
    store.save_component("orchestrator", "nightly", missing_flavor, {})
    store.save_stack("elsewhere", {"orchestrator": "nightly", "artifact_store": "local"})
    with pytest.raises(MissingIntegrationError, match=PIP_LINE.replace("[", r"\[")):
        project.orchestrator(project.stack("elsewhere"))
    with pytest.raises(MissingIntegrationError):
        summing.with_options(stack="elsewhere")(n=2)


def test_a_plugin_that_fails_to_import_is_a_missing_integration(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill._plugins import GROUPS
    from gristmill.errors import MissingIntegrationError
    from gristmill.stacks import flavors

    class Entry:
        name = "broken"
        value = "third_party_plugin:Orchestrator"

        class dist:  # shaped like importlib.metadata.Distribution
            name = "gristmill-broken-plugin"

        def load(self) -> Any:
            raise ModuleNotFoundError("No module named 'heavy_sdk'", name="heavy_sdk")

    real = flavors.entry_points
    monkeypatch.setattr(
        flavors,
        "entry_points",
        lambda group: (
            {**real(group), "broken": Entry()} if group == GROUPS["orchestrator"] else real(group)
        ),
    )
    with pytest.raises(MissingIntegrationError) as caught:
        flavors.instantiate("orchestrator", "broken", {})
    assert 'pip install "gristmill-broken-plugin"' in str(caught.value)
    assert "'heavy_sdk'" in str(caught.value)
    assert not isinstance(caught.value.__cause__, MissingIntegrationError)


def test_a_class_that_is_not_a_flavor_is_refused(project: Project) -> None:
    from gristmill.errors import ConfigError
    from gristmill.stacks.flavors import instantiate, register_flavor, unregister_flavor

    register_flavor("orchestrator", "plain", _NeedsAMissingPackage)  # type: ignore[arg-type]
    try:
        with pytest.raises(ConfigError, match=r"subclass gristmill\.stacks\.flavors\.Flavor"):
            instantiate("orchestrator", "plain", {})
    finally:
        unregister_flavor("orchestrator", "plain")


def test_built_in_flavors_declare_what_they_need() -> None:
    from gristmill.stacks.flavors import Flavor, flavor_class, flavor_names

    for kind in ("orchestrator", "artifact_store"):
        for name in flavor_names(kind):
            cls = flavor_class(kind, name)
            assert issubclass(cls, Flavor)
            assert cls.flavor == name
            assert isinstance(cls.requires, tuple)
            if cls.requires:  # an integration names the extra that installs it
                assert cls.extra
    s3 = flavor_class("artifact_store", "s3")
    assert s3.secret_fields == ("key", "secret", "token")
    assert flavor_class("artifact_store", "local").in_project


def test_a_flavor_whose_settings_are_optional_says_so_truly() -> None:
    """``settings_optional`` skips validating no settings at all: each flavor that declares it
    has a model with a default for every setting (and local_parallel, given by name, runs
    without importing pydantic)."""
    import subprocess
    import sys

    from gristmill.stacks.flavors import config_model, flavor_class, flavor_names

    declared = []
    for kind in ("orchestrator", "artifact_store", "step_operator"):
        for name in flavor_names(kind):
            try:
                cls = flavor_class(kind, name)
            except ImportError:
                continue  # its integration is not installed here
            if cls.settings_optional:
                model = config_model(cls)
                assert model is not None, name
                assert not [f for f in model.model_fields.values() if f.is_required()], name
                declared.append(name)
    assert "local_parallel" in declared
    code = (
        "import sys\n"
        "from gristmill.stacks import Component\n"
        "Component.from_options('orchestrator', {'flavor': 'local_parallel'}).build()\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_with_options_needs_a_flavor(project: Project) -> None:
    from gristmill.errors import ConfigError
    from gristmill.stacks import Component

    with pytest.raises(ConfigError, match="needs the flavor"):
        Component.from_options("orchestrator", {"max_workers": 2})
    with pytest.raises(ConfigError, match="takes a mapping"):
        Component.from_options("orchestrator", ["local"])  # type: ignore[arg-type]
