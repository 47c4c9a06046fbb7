"""Entry-point lookup for every plugin group; built-in flavors register the same way as
third-party ones. Groups are read once per process and classes are imported only when asked for."""

from __future__ import annotations

import functools
from typing import Any

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


@functools.cache
def _all_groups() -> dict[str, dict[str, Any]]:
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
                found.setdefault(ep.group, {}).setdefault(ep.name, ep)
    return found


def entry_points(group: str) -> dict[str, Any]:
    """Name → EntryPoint for one group, first registration wins."""
    return _all_groups().get(group, {})


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
