"""Stacks: a named set of components (orchestrator, artifact store, ...), each a flavor plus its
configuration. Component classes are looked up through entry points, so this package never
imports an orchestrator module itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gristmill._plugins import load_plugin
from gristmill.artifacts import ArtifactStore
from gristmill.errors import ConfigError

DEFAULT_STACK = "default"


@dataclass(frozen=True)
class Component:
    """One configured component: its type (``orchestrator``), name, flavor and settings."""

    type: str
    name: str
    flavor: str
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "flavor": self.flavor,
            "config": dict(self.config),
        }


@dataclass(frozen=True)
class Stack:
    name: str
    components: dict[str, Component]

    def component(self, component_type: str) -> Component:
        try:
            return self.components[component_type]
        except KeyError:
            raise ConfigError(
                f"stack '{self.name}' has no {component_type.replace('_', ' ')}; register one "
                "and add it to the stack"
            ) from None

    def orchestrator(self, **overrides: Any) -> Any:
        component = self.component("orchestrator")
        return _instantiate("orchestrator", component, overrides)

    def artifact_store(self) -> ArtifactStore:
        store: ArtifactStore = _instantiate("artifact_store", self.component("artifact_store"), {})
        return store

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "components": {k: c.to_dict() for k, c in self.components.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stack:
        components = {
            kind: Component(c["type"], c["name"], c["flavor"], dict(c.get("config", {})))
            for kind, c in data.get("components", {}).items()
        }
        return cls(data.get("name", DEFAULT_STACK), components)


def _instantiate(kind: str, component: Component, overrides: dict[str, Any]) -> Any:
    cls = load_plugin(kind, component.flavor)
    config = {**component.config, **overrides}
    try:
        return cls(**config)
    except TypeError as exc:
        raise ConfigError(
            f"{kind.replace('_', ' ')} '{component.name}' (flavor {component.flavor}) does not "
            f"accept its configuration {sorted(config)}: {exc}"
        ) from exc


def local_stack(artifact_root: str) -> Stack:
    """The default stack: in-process orchestrator, artifacts under the project."""
    return Stack(
        DEFAULT_STACK,
        {
            "orchestrator": Component("orchestrator", "local", "local"),
            "artifact_store": Component(
                "artifact_store", "local", "local", {"root": artifact_root}
            ),
        },
    )
