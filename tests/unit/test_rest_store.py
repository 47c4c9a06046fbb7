"""The REST store's pieces that need no server: the wire format of records (non-finite floats
included) and the connection file `gristmill connect` writes."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.store import (
    ArtifactVersionRecord,
    CacheHit,
    ComponentRecord,
    LineageGraph,
    MetricPoint,
    RunDeletion,
    RunRecord,
    StackRecord,
    StepRunRecord,
)
from gristmill.store.rest import RestStore, open_rest_store, wire
from gristmill.store.rest.connection import (
    connected_url,
    load_connection,
    normalize_url,
    remove_connection,
    save_connection,
    token_for,
)


def _version(i: int) -> ArtifactVersionRecord:
    return ArtifactVersionRecord(f"av{i}", "model", i, f"/a/{i}", "h" * 64, "json", "dict", 10, 1.5)


def _step(i: int) -> StepRunRecord:
    return StepRunRecord(f"s{i}", "r", "train", "m:train", "completed", 2.0, parameters={"lr": 0.1})


def test_records_round_trip_through_json() -> None:
    run = RunRecord("r", "run-1", "p", "pv", "running", 1.0, tags=["a"], stack={"name": "x"})
    assert wire.run_from(wire.from_json(wire.to_json(run))) == run
    hit = CacheHit(_step(1), {"out": _version(1)}, {"loss": 0.5})
    assert wire.cache_hit_from(wire.from_json(wire.to_json(hit))) == hit
    graph = LineageGraph("av1", {"av1": _version(1)}, {"s1": _step(1)}, [("av0", "s1", "av1")])
    assert wire.lineage_from(wire.from_json(wire.to_json(graph))) == graph
    component = ComponentRecord("c", "artifact_store", "local", "local", {"root": "/x"}, 1.0, 2.0)
    stack = StackRecord("st", "default", {"artifact_store": component}, 1.0, 2.0)
    assert wire.stack_from(wire.from_json(wire.to_json(stack))) == stack
    deletion = RunDeletion([run], 3, [_version(1)], [_version(2)])
    assert wire.deletion_from(wire.from_json(wire.to_json(deletion))) == deletion


def test_a_newer_servers_extra_fields_are_ignored() -> None:
    data = {**wire.plain(_version(3)), "added_later": True}
    assert wire.artifact_version_from(data) == _version(3)


def test_non_finite_floats_are_strict_json_and_come_back() -> None:
    points = [MetricPoint("r", "loss", i, v, 1.0) for i, v in enumerate((math.nan, math.inf, -1.0))]
    points.append(MetricPoint("r", "loss", 3, -math.inf, 1.0))
    body = wire.to_json(points)
    json.loads(body, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    back = [wire.metric_point_from(p) for p in wire.from_json(body)]
    assert math.isnan(back[0].value)
    assert [p.value for p in back[1:]] == [math.inf, -1.0, -math.inf]
    # without one, the body is plain JSON and nothing is walked
    assert b"$float" not in wire.to_json({"loss": 0.25})


def test_server_urls_are_normalized_and_checked() -> None:
    assert normalize_url(" http://host:8080/ ") == "http://host:8080"
    assert normalize_url("https://host/api/v1/") == "https://host"
    with pytest.raises(ConfigError, match="not a server URL"):
        normalize_url("sqlite:///x.db")
    assert repr(RestStore("http://h:1", "secret-token")) == "RestStore('http://h:1')"


def test_the_connection_file_is_private_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("GRISTMILL_API_TOKEN", raising=False)
    assert load_connection() is None and connected_url() is None
    path = save_connection("http://server:8237/", "gm_token")
    assert path == tmp_path / "config" / "gristmill" / "connection.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert connected_url() == "http://server:8237"
    assert "gm_token" not in repr(load_connection())
    assert token_for("http://server:8237/api/v1") == "gm_token"
    assert token_for("http://elsewhere:8237") is None  # the saved token is for its server only
    monkeypatch.setenv("GRISTMILL_API_TOKEN", "gm_from_env")
    assert token_for("http://server:8237") == "gm_from_env"
    assert open_rest_store("http://server:8237").url == "http://server:8237"
    assert remove_connection() is not None and load_connection() is None
    path.write_text("not json")
    with pytest.raises(ConfigError, match="gristmill connect"):
        load_connection()


def test_a_saved_connection_is_the_projects_store_unless_it_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.project import Project

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("GRISTMILL_STORE_URL", raising=False)
    project = Project(tmp_path / "fresh")
    assert project.store_url.startswith("sqlite:///")
    save_connection("http://server:8237", "gm_token")
    assert project.store_url == "http://server:8237"
    project.check_readable()  # no .gristmill/ here, but a server to read: no error
    monkeypatch.setenv("GRISTMILL_STORE_URL", "sqlite:///elsewhere.db")
    assert project.store_url == "sqlite:///elsewhere.db"
