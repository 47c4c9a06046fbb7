"""Entry-point lookup for every plugin group; built-in flavors register the same way as
third-party ones. Groups are read once per process and classes are imported only when asked for.
Also ``Flavor``, what every flavor class declares for the registry (it lives here, at the
bottom of the layers, so artifact stores and orchestrators alike can inherit it)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from gristmill.errors import ConfigError, did_you_mean

GROUPS = {
    "materializer": "gristmill.materializers",
    "orchestrator": "gristmill.orchestrators",
    "artifact_store": "gristmill.artifact_stores",
    "step_operator": "gristmill.step_operators",
    "experiment_tracker": "gristmill.experiment_trackers",
    "model_deployer": "gristmill.model_deployers",
    "image_builder": "gristmill.image_builders",
    "container_registry": "gristmill.container_registries",
    "alerter": "gristmill.alerters",
}


class Flavor:
    """The class attributes a flavor (an orchestrator, artifact store, ... implementation)
    declares; the registry reads these and nothing else. Subclass it (``Orchestrator`` and
    ``ArtifactStore`` do) and override what applies.

    ``flavor``        the name it is registered under (``local_parallel``)
    ``config_model``  ``"module:Class"`` of the pydantic model of its settings, imported only to
                      validate them; None: it takes no settings
    ``requires``      modules that must be importable to use it (``("s3fs",)``)
    ``extra``         the pip extra that installs them (``s3`` → ``pip install "gristmill[s3]"``);
                      None: the flavor's name
    ``secret_fields`` settings that carry credentials, accepted only as secret references
    ``in_project``    it keeps data under the project's ``.gristmill/`` unless told otherwise,
                      so it receives the project's defaults (the local artifact store's root)
    ``settings_optional``  every setting of its model has a default, so a component of it given
                      no settings has nothing to validate (and the run imports no pydantic for
                      it); a test holds each flavor that says so to its model
    """

    flavor: ClassVar[str]
    config_model: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    secret_fields: ClassVar[tuple[str, ...]] = ()
    in_project: ClassVar[bool] = False
    settings_optional: ClassVar[bool] = False


class _Registered:
    """A class registered in this process, shaped like an entry point (``load()``)."""

    def __init__(self, name: str, cls: Any) -> None:
        self.name = name
        self.value = f"{cls.__module__}:{cls.__qualname__}"
        self.dist = None
        self._cls = cls

    def load(self) -> Any:
        return self._cls


_registered: dict[str, dict[str, _Registered]] = {}
_registered_lock = threading.Lock()


@dataclass(frozen=True)
class _Dist:
    name: str


@dataclass(frozen=True)
class _CachedEntryPoint:
    """An entry point read from the cache: what ``load()`` imports, and its distribution."""

    name: str
    value: str
    dist: _Dist

    def load(self) -> Any:
        import importlib

        module, _, attribute = self.value.partition(":")
        found: Any = importlib.import_module(module)
        for part in attribute.split(".") if attribute else ():
            found = getattr(found, part)
        return found


@functools.cache
def _all_groups() -> dict[str, dict[str, Any]]:
    """Every gristmill entry point installed, by group. Reading every distribution's metadata
    costs ~40 ms in an environment with a few hundred packages (most of a one-step run's
    budget), so the result is cached beside the environment, keyed by the import path's folders
    and their modification times (installing or removing a package changes its folder's)."""
    key = _environment_key()
    cached = _read_cache(key)
    if cached is not None:
        return cached
    found = _scan_distributions()
    _write_cache(key, found)
    return found


def _scan_distributions() -> dict[str, dict[str, Any]]:
    # One pass over the installed distributions for every gristmill group: each separate
    # entry_points(group=...) call would read every distribution's metadata again.
    from importlib.metadata import distributions

    found: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for dist in distributions():  # in sys.path order: the first copy of a package wins
        # The name from the dist-info folder avoids parsing every METADATA file.
        name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"]
        if name in seen:
            continue
        seen.add(name)
        for ep in dist.entry_points:
            if ep.group.startswith("gristmill."):
                found.setdefault(ep.group, {}).setdefault(
                    ep.name, _CachedEntryPoint(ep.name, ep.value, _Dist(str(name)))
                )
    return found


_DIST_SUFFIXES = (".dist-info", ".egg-info", ".egg-link")
_CACHE_FILES_KEPT = 16


def _environment_key() -> str:
    import hashlib
    import os
    import sys
    from pathlib import Path

    parts = [sys.executable]
    for position, folder in enumerate(sys.path):
        try:
            if position == 0:
                # The script's folder (or the working directory) changes all the time and
                # rarely holds installed distributions: only whether it holds any counts.
                names = [e.name for e in os.scandir(folder or ".")]
                parts.append(f"{folder}:{sorted(n for n in names if n.endswith(_DIST_SUFFIXES))}")
            else:
                parts.append(f"{folder}:{Path(folder or '.').stat().st_mtime_ns}")
        except OSError:
            parts.append(f"{folder}:-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _cache_file(key: str) -> Any:
    """Beside the environment the entry points belong to (not in the user's home: reading
    gristmill's records must not create files there); skipped where it is not writable."""
    import sys
    from pathlib import Path

    return Path(sys.prefix) / ".gristmill-cache" / f"entry-points-{key}.json"


def _read_cache(key: str) -> dict[str, dict[str, Any]] | None:
    import json

    try:
        data = json.loads(_cache_file(key).read_text(encoding="utf-8"))
        return {
            group: {
                name: _CachedEntryPoint(name, item["value"], _Dist(item["dist"]))
                for name, item in entries.items()
            }
            for group, entries in data.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no cache yet, or one this version cannot read: scan


def _write_cache(key: str, found: dict[str, dict[str, Any]]) -> None:
    import json
    import os

    path = _cache_file(key)
    data = {
        group: {name: {"value": ep.value, "dist": ep.dist.name} for name, ep in entries.items()}
        for group, entries in found.items()
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        temporary.replace(path)
        # One file per import path seen (a script, pytest and a worker each put other folders
        # first), so they don't evict each other; files of environments that have changed
        # since are never read again, and only the newest few are kept.
        others = sorted(
            (f for f in path.parent.glob("entry-points-*.json") if f != path),
            key=lambda f: f.stat().st_mtime_ns,
            reverse=True,
        )
        for stale in others[_CACHE_FILES_KEPT - 1 :]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home: scan every time


def entry_points(group: str) -> dict[str, Any]:
    """Name → EntryPoint for one group, first registration wins; classes registered in this
    process (``register``) win over installed ones."""
    installed = _all_groups().get(group, {})
    local = _registered.get(group)
    return {**installed, **local} if local else installed


def register(kind: str, name: str, cls: Any) -> None:
    """Register ``cls`` as plugin ``name`` of ``kind`` for this process, as an entry point
    would (for tests, notebooks and plugins not installed as a distribution)."""
    if kind not in GROUPS:
        raise ConfigError(f"unknown plugin kind '{kind}'{did_you_mean(kind, GROUPS)}")
    with _registered_lock:
        group = dict(_registered.get(GROUPS[kind], {}))
        group[name] = _Registered(name, cls)
        _registered[GROUPS[kind]] = group  # replaced whole: readers never see it half-built


def unregister(kind: str, name: str) -> None:
    """Forget a class given to ``register`` (installed entry points stay)."""
    with _registered_lock:
        group = {k: v for k, v in _registered.get(GROUPS[kind], {}).items() if k != name}
        _registered[GROUPS[kind]] = group


def load_plugin(kind: str, name: str) -> Any:
    """The class registered as ``name`` for a plugin kind, with a 'did you mean' on a typo."""
    eps = entry_points(GROUPS[kind])
    if name not in eps:
        hint = did_you_mean(name, eps)
        if not eps:
            hint = " (no plugins are registered at all: is gristmill installed? `pip install -e .`)"
        raise ConfigError(f"unknown {kind.replace('_', ' ')} flavor '{name}'{hint}")
    return eps[name].load()


def plugin_names(kind: str) -> list[str]:
    return sorted(entry_points(GROUPS[kind]))
