"""Issue 15: what a shared metadata store or artifact bucket holds is data, never code to run,
paths to follow or markup to render. Each test plants a payload the way an attacker with write
access to the store, the bucket or a world-writable folder would, and shows it refused: a clear
error, nothing executed, nothing written outside.

Findings 1, 4b, 5a, 8 and 9a are tested elsewhere (see docs/security.md)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gristmill import Client
from gristmill._hashing import canonical_json, hash_bytes, hash_text
from gristmill.cli.main import cli
from gristmill.errors import (
    ConfigError,
    ParameterError,
    PipelineDefinitionError,
)
from gristmill.project import Project, find_project
from gristmill.testing import write_module

PIPES = """
from gristmill import step, pipeline, log_metadata

@step
def make(n: int = 3) -> str:
    return "value-" + str(n)

@step
def shout(text: str) -> str:
    log_metadata({"note": "fine"})
    return text.upper()

@pipeline
def simple(n: int = 3):
    shout(make(n))
"""


@pytest.fixture
def pipes(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A pipeline module of the user's own, importable from the project folder."""
    folder = project.root / "src"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(project.root)
    sys.modules.pop("secpipes", None)
    yield write_module(folder, "secpipes", PIPES)
    sys.modules.pop("secpipes", None)


def sql(project: Project, statement: str, *args: Any) -> None:
    """Write the metadata store behind gristmill's back, as a teammate with write access to
    the shared database could."""
    with sqlite3.connect(project.directory / "metadata.db") as db:
        changed = db.execute(statement, args).rowcount
    assert changed, statement


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def flat(text: str) -> str:
    """Output without the line breaks and spaces the console wraps it with."""
    return "".join(text.split())


# -- 2, 3: code snapshots are verified before anything is written or imported --------------------


def _plant_snapshot(project: Project, run_id: str, files: dict[str, bytes]) -> str:
    """A self-consistent snapshot in the bucket, recorded as the run's (the attacker holds
    both the bucket and the database): only the path checks stand in the way."""
    root = project.directory / "artifacts"
    digests = {}
    for relative, data in files.items():
        digest = hash_bytes(data)
        path = root / "code" / "files" / digest[:2] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests[relative] = digest
    manifest = canonical_json({"files": digests})
    snapshot = hash_text(manifest)
    (root / "code" / "snapshots" / f"{snapshot}.json").write_text(manifest)
    environment = Client().get_run(run_id).environment
    environment["code"] = {"snapshot": snapshot, "files": len(files)}
    sql(project, "UPDATE runs SET environment = ? WHERE id = ?", json.dumps(environment), run_id)
    return snapshot


@pytest.mark.parametrize(
    "entry",
    [
        "../../../../../../../../OUTSIDE/X.py",
        "secpipes/../../../../../../../OUTSIDE/X.py",
        "/OUTSIDE/Y.py",
        "C:/OUTSIDE/Y.py",
        "..\\..\\OUTSIDE\\Z.py",
        "secpipes.sh",
        ".bashrc",
        "pkg/not-a-module.py",
    ],
)
def test_snapshot_paths_outside_the_target_are_refused(
    pipes: Any, project: Project, tmp_path: Path, entry: str
) -> None:
    run = pipes.simple()
    outside = tmp_path / "OUTSIDE"
    planted = entry.replace("/OUTSIDE", str(outside)) if entry.startswith("/") else entry
    _plant_snapshot(project, run.id, {"secpipes.py": PIPES.encode(), planted: b"print('pwned')"})
    result = invoke("rerun", run.id, "--from", "shout")
    assert result.exit_code != 0
    assert flat(repr(planted)) in flat(result.output)
    assert "refusingtorestore" in flat(result.output)
    assert not outside.exists()
    assert not (project.directory / "snapshots").exists()  # nothing written at all


def test_a_tampered_snapshot_file_is_refused_and_reproduce_fails(
    pipes: Any, project: Project, tmp_path: Path
) -> None:
    run = pipes.simple()
    marker = tmp_path / "EXECUTED"
    snapshot = run.environment["code"]["snapshot"]
    digest = json.loads(run.artifact_store.get_blob(f"code/snapshots/{snapshot}.json"))["files"][
        "secpipes.py"
    ]
    stored = project.directory / "artifacts" / "code" / "files" / digest[:2] / digest
    stored.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + stored.read_text())
    result = invoke("reproduce", run.id)
    assert result.exit_code == 1
    assert "'secpipes.py'" in result.output
    assert "doesnotmatchitsBLAKE3digest" in flat(result.output)
    assert "match byte for byte" not in result.output
    assert not marker.exists()
    assert not (project.directory / "snapshots").exists()
    assert invoke("rerun", run.id, "--from", "shout").exit_code == 1
    assert not marker.exists()


def test_a_tampered_snapshot_manifest_is_refused(pipes: Any, project: Project) -> None:
    run = pipes.simple()
    snapshot = run.environment["code"]["snapshot"]
    manifest = project.directory / "artifacts" / "code" / "snapshots" / f"{snapshot}.json"
    evil = b"import os\n"
    digest = hash_bytes(evil)
    (project.directory / "artifacts" / "code" / "files" / digest[:2]).mkdir(exist_ok=True)
    (project.directory / "artifacts" / "code" / "files" / digest[:2] / digest).write_bytes(evil)
    manifest.write_text(canonical_json({"files": {"secpipes.py": digest}}))
    result = invoke("reproduce", run.id, "--json")
    assert result.exit_code == 1
    assert f"code/snapshots/{snapshot}.json" in flat(result.output)
    assert "doesnotmatchthehashtherunrecorded" in flat(result.output)
    sql(
        project,
        "UPDATE runs SET environment = ? WHERE id = ?",
        json.dumps({**run.environment, "code": {"snapshot": "../../etc/passwd"}}),
        run.id,
    )
    result = invoke("reproduce", run.id)
    assert result.exit_code == 1 and "isnotaBLAKE3digest" in flat(result.output)


def test_an_untampered_snapshot_still_reproduces(pipes: Any) -> None:
    run = pipes.simple()
    result = invoke("reproduce", run.id)
    assert result.exit_code == 0, result.output
    assert "All 2 artifacts match byte for byte" in result.output


# -- 4a: a type name in a row is never imported or called ------------------------------------------


EVIL_MODULE = """
from pathlib import Path
import pydantic

MARKER = Path({marker!r})

def touch(value=None, *args, **kwargs):
    MARKER.write_text("executed")
    return "called"

class Model(pydantic.BaseModel):
    text: str = ""

    def __init__(self, *args, **kwargs):
        MARKER.write_text("executed")
        super().__init__()
"""


def test_a_type_named_by_a_row_is_never_imported_or_called(
    pipes: Any, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = pipes.simple()
    marker = tmp_path / "EXECUTED"
    evil_folder = tmp_path / "elsewhere"
    evil_folder.mkdir()
    (evil_folder / "evil_types.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(evil_folder))  # importable, but never imported
    av = run.steps["make"].output()
    for data_type in ("evil_types.touch", "os.system", "subprocess.getoutput", "evil_types.Model"):
        sql(project, "UPDATE artifact_versions SET data_type = ? WHERE id = ?", data_type, av.id)
        loaded = Client().get_artifact_version(av.id).load()
        assert loaded == "value-3" and type(loaded) is str
        assert "evil_types" not in sys.modules
    # Imported already: still never called, since it is not a class of the kind rebuilt.
    import evil_types  # type: ignore[import-not-found]

    try:
        sql(
            project,
            "UPDATE artifact_versions SET data_type = ? WHERE id = ?",
            "evil_types.touch",
            av.id,
        )
        assert Client().get_artifact_version(av.id).load() == "value-3"
        result = invoke("artifacts", "load", av.id)
        assert result.exit_code == 0 and result.output == "value-3\n"
    finally:
        sys.modules.pop(evil_types.__name__, None)
    assert not marker.exists()


def test_pydantic_models_come_back_only_as_an_imported_class(
    project: Project, tmp_path: Path
) -> None:
    import pydantic

    from gristmill.artifacts import load_artifact, save_artifact

    class Settings(pydantic.BaseModel):
        name: str

    store = project.artifact_store()
    saved = save_artifact(store, Settings(name="x"), where="test")
    # Not importable by name (a local class): the data comes back as a plain dict.
    assert load_artifact(store, saved.content.uri, "pydantic", saved.data_type) == {"name": "x"}
    # A row naming a function, or a class that is not a model: plain data, nothing called.
    for data_type in ("os.system", "builtins.dict", "subprocess.Popen"):
        assert load_artifact(store, saved.content.uri, "pydantic", data_type) == {"name": "x"}
    # A JSON row naming a container it does not hold is an error, not a call.
    listed = save_artifact(store, "text", where="test")
    with pytest.raises(Exception, match="not the list"):
        load_artifact(store, listed.content.uri, "json", "builtins.tuple")


# -- 6: project discovery on shared machines ---------------------------------------------------------


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """``/tmp/x/.gristmill`` (made by someone else) above the victim's folder ``/tmp/x/victim``."""
    root = tmp_path / "x"
    (root / ".gristmill").mkdir(parents=True)
    victim = root / "victim"
    victim.mkdir()
    monkeypatch.delenv("GRISTMILL_PROJECT")
    monkeypatch.delenv("GRISTMILL_SAFE_DIRECTORIES", raising=False)
    return root, victim


def test_a_project_owned_by_another_user_is_refused(
    shared: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, victim = shared
    (root / ".gristmill").chmod(0o700)
    os.chown(root / ".gristmill", 12345, 12345)
    with pytest.raises(ConfigError) as refused:
        find_project(victim)
    message = str(refused.value)
    assert f"refusing {root / '.gristmill'}" in message and "owned by uid 12345" in message
    assert f"GRISTMILL_SAFE_DIRECTORIES={root}" in message
    monkeypatch.chdir(victim)
    result = invoke("runs", "list")
    assert result.exit_code != 0 and "ownedbyuid12345" in flat(result.output)
    monkeypatch.setenv("GRISTMILL_SAFE_DIRECTORIES", f"/elsewhere{os.pathsep}{root}")
    assert find_project(victim).root == root


def test_a_project_writable_by_others_is_refused(
    shared: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, victim = shared
    (root / ".gristmill").chmod(0o777)
    with pytest.raises(ConfigError, match="writable by group and others"):
        find_project(victim)
    (root / ".gristmill").chmod(0o702)
    with pytest.raises(ConfigError, match=r"writable by others \(mode 702\).*chmod go-w"):
        find_project(victim)
    (root / ".gristmill").chmod(0o755)
    assert find_project(victim).root == root  # readable is fine: only writers are a risk
    (root / ".gristmill").chmod(0o777)
    monkeypatch.setenv("GRISTMILL_SAFE_DIRECTORIES", "*")
    assert find_project(victim).root == root


# -- 10a: ids and names are matched whole ---------------------------------------------------------------


def test_a_step_id_or_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    from gristmill.spec import PipelineSpec, StepSpec, referenced_param
    from gristmill.yaml_pipelines import load_pipeline

    spec = PipelineSpec(name="p", steps=[StepSpec(id="evil\n", source="m:f")])
    with pytest.raises(PipelineDefinitionError, match=r"step id 'evil\\n' is not valid"):
        spec.validate()
    with pytest.raises(PipelineDefinitionError, match="pipeline name"):
        PipelineSpec(name="evil\n", steps=[StepSpec(id="a", source="m:f")]).validate()
    assert referenced_param("${x}\n") is None
    pipeline_file = tmp_path / "p.yaml"
    pipeline_file.write_text(
        json.dumps({"name": "p", "steps": {"evil\n": {"uses": "secpipes:make"}}})
    )
    with pytest.raises((PipelineDefinitionError, ConfigError), match="evil"):
        load_pipeline(pipeline_file)


def test_secret_names_with_a_trailing_newline_are_refused() -> None:
    from gristmill.stacks import secrets

    with pytest.raises(ConfigError, match="secret name"):
        secrets._check_name("evil\n")


# -- 10b: third-party packages on PYTHONPATH are not user code -----------------------------------------


def test_packages_installed_on_pythonpath_are_not_snapshotted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Project
) -> None:
    from gristmill import _source

    target = tmp_path / "pip-target"  # `pip install --target`, then on PYTHONPATH
    (target / "thirdparty").mkdir(parents=True)
    (target / "thirdparty" / "__init__.py").write_text("X = 1\n")
    (target / "recorded.py").write_text("Y = 1\n")
    (target / "thirdparty-1.0.dist-info").mkdir()
    (target / "thirdparty-1.0.dist-info" / "top_level.txt").write_text("thirdparty\n")
    (target / "recorded-2.0.dist-info").mkdir()
    (target / "recorded-2.0.dist-info" / "RECORD").write_text(
        "recorded.py,sha256=x,6\nrecorded-2.0.dist-info/RECORD,,\n"
    )
    loose = tmp_path / "loose"  # a folder of the user's own modules, outside the project
    loose.mkdir()
    (loose / "helpers_mod.py").write_text("Z = 1\n")
    for folder in (target, loose):
        monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(project.root)
    _source._is_user_file.cache_clear()
    try:
        import helpers_mod  # type: ignore[import-not-found]
        import recorded  # type: ignore[import-not-found]
        import thirdparty  # type: ignore[import-not-found]

        assert not _source.is_user_module("thirdparty")
        assert not _source.is_user_module("recorded")
        assert _source.is_user_module("helpers_mod")
        from gristmill.execution.environment import user_source_files

        found = user_source_files()
        assert "helpers_mod.py" in found
        assert "thirdparty/__init__.py" not in found and "recorded.py" not in found
    finally:
        for name in ("thirdparty", "recorded", "helpers_mod"):
            sys.modules.pop(name, None)
        _source._is_user_file.cache_clear()
    del helpers_mod, recorded, thirdparty


def test_a_project_folder_with_metadata_is_still_user_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill import _source

    project_root = tmp_path / "proj"  # an editable install: src/ holds mypkg.egg-info
    (project_root / "src" / "mypkg_sec").mkdir(parents=True)
    (project_root / "src" / "mypkg_sec" / "__init__.py").write_text("")
    (project_root / "src" / "mypkg_sec.egg-info").mkdir()
    (project_root / "src" / "mypkg_sec.egg-info" / "top_level.txt").write_text("mypkg_sec\n")
    monkeypatch.chdir(project_root)
    _source._is_user_file.cache_clear()
    try:
        assert _source._is_user_file(str(project_root / "src" / "mypkg_sec" / "__init__.py"))
    finally:
        _source._is_user_file.cache_clear()


# -- 10c, 5b: the project's files are private ---------------------------------------------------------


def test_project_files_are_created_private(tmp_path: Path) -> None:
    previous = os.umask(0o002)  # a permissive umask, as on many shared machines
    try:
        project = Project(tmp_path / "fresh")
        assert project.init()
        project.save_settings(store_url="postgresql+psycopg://u:PASSWORD@db/x")
    finally:
        os.umask(previous)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(project.directory) == 0o700
    assert mode(project.directory / "config.json") == 0o600
    assert mode(project.directory / "secrets.key") == 0o600


# -- 7: console markup and escapes ---------------------------------------------------------------------


NASTY = "nightly[/bold] [link=http://x]click[/link] \x1b[31mred\x1b]0;title\x07 \x9b2J"


def test_markup_and_escapes_from_the_store_are_printed_as_text(
    pipes: Any, project: Project
) -> None:
    run = pipes.simple()
    step = run.steps["shout"]
    sql(project, "UPDATE runs SET name = ?, error = ? WHERE id = ?", NASTY, NASTY, run.id)
    sql(project, "UPDATE pipelines SET name = ?", NASTY)
    sql(
        project, "UPDATE step_runs SET error = ?, status = ? WHERE id = ?", NASTY, "failed", step.id
    )
    sql(project, "UPDATE metadata SET key = ?, value = ?", NASTY, json.dumps(NASTY))
    sql(project, "UPDATE artifact_versions SET preview = ?, data_type = ?", NASTY, "x.[bold]")
    literal = "nightly[/bold] [link=http://x]click[/link]"
    for args in (
        ("runs", "list"),
        ("runs", "show", run.id),
        ("runs", "show", run.id, "--config"),
        ("artifacts", "list"),
        ("artifacts", "show", step.output().id),
        ("pipeline", "list"),
        ("lineage", step.output().id),
    ):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert (
            "\x1b" not in result.output
            and "\x9b" not in result.output
            and "\x07" not in result.output
        )
        if args[0] in ("runs", "pipeline"):
            assert literal in result.output, args
    shown = invoke("runs", "show", run.id).output
    assert shown.count(literal) >= 3  # the name, the pipeline, the errors and the metric


def test_names_that_are_markup_are_refused_when_given(pipes: Any) -> None:
    with pytest.raises(ConfigError, match=r"run name 'nightly\[/bold\]'"):
        pipes.simple.with_options(run_name="nightly[/bold]")()
    with pytest.raises(ConfigError, match="run name"):
        pipes.simple.with_options(run_name="{pipeline}\x1b[31m")()
    from gristmill import pipeline

    with pytest.raises(PipelineDefinitionError, match="pipeline name"):
        pipeline(name="evil[/bold]")(lambda: None)
    with pytest.raises(PipelineDefinitionError, match="pipeline name"):
        pipes.simple.with_options(name="a\nb")
    assert pipes.simple.with_options(run_name="nightly {date} @{id}")().name.startswith("nightly ")


# -- 9b, 9c: resource exhaustion -------------------------------------------------------------------------


def test_a_huge_parameter_is_refused_with_the_fix(pipes: Any) -> None:
    with pytest.raises(ParameterError, match=r"over the 64 KiB limit.*as an artifact"):
        pipes.simple(n="x" * 100_000)
    with pytest.raises(ParameterError, match="64 KiB"):
        pipes.simple(n=[1] * 40_000)


def test_runs_show_truncates_long_values(pipes: Any, project: Project) -> None:
    run = pipes.simple()
    config = {**run.config, "resolved_parameters": {"n": "y" * 5_000_000}}
    sql(project, "UPDATE runs SET config = ? WHERE id = ?", json.dumps(config), run.id)
    sql(project, "UPDATE metadata SET value = ?", json.dumps("z" * 5_000_000))
    started = time.perf_counter()
    result = invoke("runs", "show", run.id, "--config")
    assert result.exit_code == 0, result.output[-2000:]
    assert time.perf_counter() - started < 10
    assert len(result.output) < 100_000
    assert "5,000,000 characters" in result.output


def test_a_huge_output_preview_is_built_from_a_bounded_slice(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.artifacts import save_artifact
    from gristmill.artifacts.materializers import builtin

    big = "a" * 10_000_000
    real_dumps = json.dumps
    largest: list[int] = []

    def watched(value: Any, *args: Any, **kwargs: Any) -> str:
        largest.append(len(value) if isinstance(value, (str, list, dict)) else 0)
        return real_dumps(value, *args, **kwargs)

    monkeypatch.setattr(builtin.json, "dumps", watched)
    started = time.perf_counter()
    preview, meta = builtin.JSONMaterializer().describe(big)
    assert time.perf_counter() - started < 0.05
    assert max(largest) <= 1_000_000 and len(preview) <= 240
    preview, meta = builtin.JSONMaterializer().describe([big] * 1000)
    assert max(largest) <= 1_000_000 and len(preview) <= 240 and meta == {"length": 1000}
    monkeypatch.setattr(builtin.json, "dumps", real_dumps)
    saved = save_artifact(project.artifact_store(), big, where="test")
    assert len(saved.preview) <= 240 and saved.preview.startswith('"aaa')


def test_column_names_reach_previews_without_control_characters(project: Project) -> None:
    import pandas as pd

    from gristmill.artifacts import save_artifact

    frame = pd.DataFrame({"\x1b]0;pwned\x07[/bold]" + "c" * 10_000: [1]})
    saved = save_artifact(project.artifact_store(), frame, where="test")
    assert "\x1b" not in saved.preview and "\x07" not in saved.preview
    assert "[/bold]" in saved.preview and len(saved.preview) <= 240
    assert all("\x1b" not in c and len(c) <= 100 for c in saved.metadata["columns"])


@pytest.mark.parametrize(
    "name", ["prod[/bold]", "a\nb", "[link=http://x]y", "\x1b[31mred", "-x", ""]
)
def test_stack_and_component_names_are_validated(name: str) -> None:
    from gristmill.project import find_project

    store = find_project().store()
    with pytest.raises(ConfigError, match="orchestrator name"):
        store.save_component("orchestrator", name, "local", {})
    with pytest.raises(ConfigError, match="stack name"):
        store.save_stack(name, {"orchestrator": "local", "artifact_store": "local"})
