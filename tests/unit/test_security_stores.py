"""Issue 15, the stores' findings: each test plants what an attacker with write access to a
shared metadata store or artifact bucket (or a YAML file) would, and shows it refused with a
clear error, nothing run and nothing written outside. Findings 1 (downloads; through a real
S3-compatible server in tests/integration/test_security_s3.py), 4b (URIs, and rows reused by cache hits),
5a (store passwords), 8 (redaction) and 9a (YAML aliases)."""

from __future__ import annotations

import json
import logging
import pickle
import resource
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner

from gristmill import Client, RunFailedError, log_metadata, pipeline, step
from gristmill._yaml import load_yaml, read_yaml
from gristmill.artifacts import ArtifactStore, load_artifact, save_artifact
from gristmill.cli.main import cli
from gristmill.errors import ArtifactStoreError, ConfigError
from gristmill.execution.environment import recorded_argv
from gristmill.project import Project
from gristmill.stacks import secrets

SECRET = "s3cr3t-V4lue-for-the-redaction-test"
PASSWORD = "SECRETPW-0f-the-store"


def gm(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def _database(project: Project) -> Path:
    return project.directory / "metadata.db"


def _update(project: Project, sql: str, *params: Any) -> None:
    """What an attacker with write access to the shared database does."""
    with sqlite3.connect(_database(project)) as conn:
        assert conn.execute(sql, params).rowcount == 1


def _stored_bytes(project: Project) -> bytes:
    """Every byte the metadata store holds (the database and its write-ahead log)."""
    return b"".join(
        path.read_bytes() for path in project.directory.glob("metadata.db*") if path.is_file()
    )


@step(cache=False)
def greet() -> Annotated[str, "greeting"]:
    return "hello"


@pipeline
def greeting() -> None:
    greet()


# -- 9a: YAML aliases ---------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)  # 9 levels of 9 aliases: 387 million strings if expanded

    # First in a child with 2 GiB of address space: were the aliases expanded again, the child
    # would fail, not the test run.
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    result = subprocess.run(
        [str(Path(sys.executable).with_name("gristmill")), "pipeline", "validate", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limited,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert f"{bomb}:2:8: YAML aliases (*name) are not allowed in gristmill files" in said
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"YAML aliases \(\*name\) are not allowed"):
        read_yaml(bomb)
    assert time.perf_counter() - started < 1.0
    # a merge key is an alias too; an anchor alone is harmless and stays allowed
    with pytest.raises(ConfigError, match=r"config.yaml:3:7: YAML aliases \(\*name\)"):
        load_yaml("base: &base {lr: 0.1}\ntrain:\n  <<: *base\n", "config.yaml")
    assert load_yaml("name: &n x\n", "ok.yaml").data == {"name": "x"}


# -- 4b: URIs outside the store, rows reused without comparing them -----------------------------


def test_a_row_pointing_outside_the_store_is_not_unpickled(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = greeting()
    version = run.steps["greet"].outputs["greeting"]
    # the attacker's folder, with a pickle that would create a file when loaded
    planted = tmp_path / "x"
    planted.mkdir()
    ran = tmp_path / "RAN"
    (planted / "value.pkl").write_bytes(pickle.dumps(_Payload(str(ran))))
    _update(
        project,
        "UPDATE artifact_versions SET uri = ?, materializer = 'cloudpickle' WHERE id = ?",
        str(planted),
        version.id,
    )
    monkeypatch.setenv("GRISTMILL_ALLOW_PICKLE", "1")  # not even an opt-in to pickle helps
    store = project.artifact_store()
    with pytest.raises(ArtifactStoreError) as refused:
        Client().get_artifact_version("greeting").load()
    message = str(refused.value)
    assert repr(str(planted)) in message and store.root in message
    assert "not a content address" in message
    result = gm("artifacts", "load", "greeting:1", code=1)
    assert "not a content address in the artifact store" in result.output
    gm("artifacts", "load", "greeting:1", "--to", str(tmp_path / "copy"), code=1)
    assert not ran.exists() and not (tmp_path / "copy").exists()


class _Payload:
    """A pickle that, loaded, creates a file: proof that loading ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def test_only_content_addresses_of_the_store_are_read(project: Project) -> None:
    store = project.artifact_store()
    saved = save_artifact(store, {"v": 1}, where="test")
    digest = saved.content.content_hash
    for uri in (
        "/tmp/x",
        f"{store.root}/../x/{digest[:2]}/{digest}",
        f"{store.root}/{digest[:2]}/{digest}/..",
        f"{store.root}/{digest[:2]}/not-a-hash",
        f"{store.root}/ff/{digest}",  # the folder must be the hash's first two characters
        f"{store.root}/logs/run/step.log",
    ):
        with pytest.raises(ArtifactStoreError, match="not a content address"):
            store.local_directory(uri)
    assert load_artifact(store, saved.content.uri, "json", "builtins.dict") == {"v": 1}
    # the URI of a step's logs, too, must be inside the store
    for uri in ("/etc/passwd", f"{store.root}/logs/../../../../etc/passwd"):
        with pytest.raises(ArtifactStoreError, match="not inside the artifact store"):
            store.read_text(uri)


def test_a_download_never_writes_outside_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download code every object store shares (S3, GCS, Azure), on fsspec's in-memory
    filesystem, which keeps ``..`` in names as S3 does."""
    monkeypatch.setenv("GRISTMILL_CACHE_DIR", str(tmp_path / "cache"))
    store = ArtifactStore(f"memory://bucket-{uuid.uuid4().hex}/artifacts")
    saved = save_artifact(store, {"v": 1}, where="test")
    outside = tmp_path / "outside" / "PWNED"
    planted = f"{saved.content.uri}/" + "../" * 40 + str(outside).lstrip("/")
    store.fs.pipe_file(planted, b"pwned")
    with pytest.raises(ArtifactStoreError, match="refusing to download") as refused:
        store.local_directory(saved.content.uri)
    assert "PWNED" in str(refused.value)
    assert not outside.parent.exists()
    assert not list((tmp_path / "cache" / "artifacts").iterdir())  # no partial download left
    store.fs.rm(planted)
    # a file added inside the folder is not covered by the content hash: refused too
    store.fs.pipe_file(f"{saved.content.uri}/value.pkl", b"planted")
    with pytest.raises(ArtifactStoreError, match="do not hash to its content address"):
        store.local_directory(saved.content.uri)
    store.fs.rm(f"{saved.content.uri}/value.pkl")
    assert load_artifact(store, saved.content.uri, "json", "builtins.dict") == {"v": 1}


@pytest.mark.parametrize(
    ("column", "value"),
    [("data_type", "os.system"), ("materializer", "cloudpickle"), ("uri", "/tmp/x")],
)
def test_a_changed_row_is_not_reused_when_the_same_bytes_are_published(
    project: Project, column: str, value: str
) -> None:
    first = greeting()
    version = first.steps["greet"].outputs["greeting"]
    _update(project, f"UPDATE artifact_versions SET {column} = ? WHERE id = ?", value, version.id)
    again = greeting()  # the same bytes again: a new version of its own, never the changed row
    published = again.steps["greet"].outputs["greeting"]
    assert published.id != version.id and published.version == 2
    assert (published.uri, published.materializer, published.data_type) == (
        version.uri,
        "json",
        "builtins.str",
    )
    assert published.load() == "hello"
    assert Client().get_artifact_version(version.id).producer.run.id == first.id  # type: ignore[union-attr]


@step
def greet_cached() -> Annotated[str, "cached_greeting"]:
    return "hello"


@pipeline
def cached_greeting() -> None:
    greet_cached()


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("data_type", "os.system", "data_type is 'os.system', not the declared builtins.str"),
        ("materializer", "numpy", "materializer is 'numpy', which does not store a builtins.str"),
        ("content_hash", "0" * 64, "not the address of its content hash"),
    ],
)
def test_a_changed_row_is_not_linked_by_a_cache_hit(
    project: Project, column: str, value: str, said: str
) -> None:
    first = cached_greeting()
    version = first.steps["greet_cached"].outputs["cached_greeting"]
    _update(project, f"UPDATE artifact_versions SET {column} = ? WHERE id = ?", value, version.id)
    with pytest.raises(RunFailedError) as caught:
        cached_greeting()  # a cache hit would link the changed row to this run
    failed = caught.value.run
    assert failed is not None
    error = Client().get_run(failed.id).steps["greet_cached"].error or ""
    assert "does not match what this step publishes" in error
    assert said in error
    assert "refusing to reuse it" in error
    # nothing links the poisoned row to the new run
    assert not Client().get_run(failed.id).steps["greet_cached"].outputs


# -- 5a: store passwords ------------------------------------------------------------------------


def test_a_store_password_in_the_command_line_is_masked_when_recorded() -> None:
    argv = [
        "gristmill",
        "--store",
        f"postgresql+psycopg://ml:{PASSWORD}@db.internal:5432/gristmill",
        f"--store=postgresql://ml:{PASSWORD}@db.internal/gm",
        f"mysql+pymysql://ml@db/gm?password={PASSWORD}&charset=utf8",
        "run",
        "pipeline.yaml",
    ]
    recorded = recorded_argv(argv)
    assert PASSWORD not in json.dumps(recorded)
    assert recorded[2] == "postgresql+psycopg://ml:***@db.internal:5432/gristmill"
    assert recorded[3] == "--store=postgresql://ml:***@db.internal/gm"
    assert recorded[4] == "mysql+pymysql://ml@db/gm?password=***&charset=utf8"
    assert recorded[5:] == ["run", "pipeline.yaml"]


def test_a_run_started_with_a_store_password_does_not_record_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line a teammate typed (``gristmill --store URL run ...``) is what the run
    records; the store itself is the test project's (this machine has no PostgreSQL)."""
    (project.root / "hello.py").write_text(
        "from gristmill import step, pipeline\n"
        "@step\n"
        "def one() -> int:\n"
        "    return 1\n"
        "@pipeline\n"
        "def hello():\n"
        "    one()\n"
    )
    monkeypatch.chdir(project.root)
    monkeypatch.syspath_prepend(str(project.root))
    url = f"postgresql+psycopg://ml:{PASSWORD}@127.0.0.1:1/gristmill"
    monkeypatch.setattr(sys, "argv", ["gristmill", "--store", url, "run", "hello:hello"])
    gm("run", "hello:hello")
    shown = gm("runs", "show", "latest", "--config", "--json").output
    assert json.loads(shown)["environment"]["argv"][2] == safe(url)
    config = gm("runs", "show", "latest", "--config").output
    for text in (shown, config):
        assert PASSWORD not in text
    assert PASSWORD.encode() not in _stored_bytes(project)


def safe(url: str) -> str:
    return url.replace(PASSWORD, "***")


# -- 8: redaction on write and on the live console -----------------------------------------------


def test_a_secret_is_masked_in_metadata_previews_logs_and_the_live_console(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    gm("secret", "create", "token", f"value={SECRET}")
    assert project.secrets().get("token")["value"] == SECRET  # resolved: this process knows it

    @step(cache=False)
    def leaky() -> Annotated[str, "message"]:
        log_metadata({"token": SECRET, "nested": {"list": [f"Bearer {SECRET}"]}})
        # split across writes, as a progress printer or print(..., end="") would
        sys.stdout.write(f"the token is {SECRET[:5]}")
        sys.stdout.flush()
        sys.stdout.write(f"{SECRET[5:]} (printed)\n")
        print(f"again {SECRET}", file=sys.stderr)
        logging.getLogger("user.code").warning("warned about %s", SECRET)
        return f"the value is {SECRET}"

    @pipeline
    def leaking() -> None:
        leaky()

    # As in a program that configured no logging, where warnings reach the console through
    # gristmill's handler (pytest's own handlers are put back afterwards).
    root = logging.getLogger()
    pytest_handlers = root.handlers[:]
    root.handlers.clear()
    try:
        run = leaking()
    finally:
        root.handlers[:] = pytest_handlers
    captured = capfd.readouterr()
    console = captured.out + captured.err
    assert SECRET not in console and SECRET[:12] not in console
    assert "the token is *** (printed)" in captured.out
    assert "again ***" in captured.err and "warned about ***" in captured.err

    step_run = Client().get_run(run.id).steps["leaky"]
    assert step_run.metadata["token"] == "***"
    assert step_run.metadata["nested"] == {"list": ["Bearer ***"]}
    assert Client().get_run(run.id).metadata["token"] == "***"
    output = step_run.outputs["message"]
    assert output.preview is not None and "***" in output.preview
    assert SECRET not in output.preview
    assert output.load() == f"the value is {SECRET}"  # the data itself is the user's own
    logs = step_run.logs()
    assert "the token is *** (printed)" in logs and SECRET not in logs
    # nothing that the metadata store holds carries it (the secret itself is encrypted)
    assert SECRET.encode() not in _stored_bytes(project)


def test_live_redaction_holds_back_only_what_may_start_a_secret() -> None:
    secrets.remember(SECRET)
    shown, held = secrets.redact_stream(f"value: {SECRET[:6]}")
    assert (shown, held) == ("value: ", SECRET[:6])
    shown, held = secrets.redact_stream(held + SECRET[6:] + " done\n")
    assert (shown, held) == ("*** done\n", "")
    assert secrets.redact_stream("nothing secret here\n") == ("nothing secret here\n", "")
