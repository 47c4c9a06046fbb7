"""The entry-point cache beside the environment: read instead of scanning every distribution,
one file per import path so a script, pytest and a worker don't evict each other."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gristmill import _plugins


@pytest.fixture
def scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    calls: list[int] = []
    real_scan = _plugins._scan_distributions

    def counting_scan() -> dict[str, dict[str, object]]:
        calls.append(1)
        return real_scan()

    monkeypatch.setattr(_plugins, "_scan_distributions", counting_scan)
    _plugins._all_groups.cache_clear()
    yield calls
    _plugins._all_groups.cache_clear()


def _groups_for(key: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, object]]:
    monkeypatch.setattr(_plugins, "_environment_key", lambda: key)
    _plugins._all_groups.cache_clear()
    return _plugins._all_groups()


def test_a_second_process_reads_the_cache(
    scans: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _groups_for("script", monkeypatch)
    again = _groups_for("script", monkeypatch)
    assert len(scans) == 1
    assert first.keys() == again.keys()
    assert again["gristmill.orchestrators"]["local"].value == (
        "gristmill.orchestrators.local:LocalOrchestrator"
    )


def test_import_paths_do_not_evict_each_other(
    scans: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _groups_for("script", monkeypatch)
    _groups_for("pytest", monkeypatch)
    _groups_for("script", monkeypatch)
    _groups_for("pytest", monkeypatch)
    assert len(scans) == 2


def test_only_the_newest_files_are_kept(
    scans: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for n in range(_plugins._CACHE_FILES_KEPT + 5):
        _groups_for(f"environment-{n}", monkeypatch)
    files = list((tmp_path / ".gristmill-cache").glob("entry-points-*.json"))
    assert len(files) == _plugins._CACHE_FILES_KEPT
