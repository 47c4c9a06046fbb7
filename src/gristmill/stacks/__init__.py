"""Stacks: a named set of components (orchestrator, artifact store, ...), each a flavor plus
its settings, stored in the metadata store. Component classes are looked up through entry
points, so this package never imports an orchestrator module itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gristmill._plugins import load_plugin
from gristmill.artifacts import ArtifactStore
from gristmill.errors import ConfigError
from gristmill.stacks.flavors import COMPONENT_TYPES
from gristmill.store import MetadataStore, NotFoundError, StackRecord

DEFAULT_STACK = "default"
DEFAULT_COMPONENT = "local"

# Turns the secret references in a component's settings into values.
Resolver = Callable[[Mapping[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class Component:
    """One configured component: its type (``orchestrator``), name, flavor and settings
    (secret references unresolved)."""

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
                f"stack '{self.name}' has no {component_type.replace('_', ' ')}; register one and add it "
                f"to the stack (gristmill stack register {self.name} ... {COMPONENT_TYPES[component_type].flag} NAME)"
            ) from None

    def orchestrator(self, *, resolve: Resolver | None = None, **overrides: Any) -> Any:
        return self._build("orchestrator", resolve, overrides)

    def artifact_store(
        self, *, resolve: Resolver | None = None, default_root: str | None = None
    ) -> ArtifactStore:
        defaults = {"root": default_root} if default_root else {}
        store: ArtifactStore = self._build("artifact_store", resolve, {}, defaults)
        return store

    def _build(
        self,
        kind: str,
        resolve: Resolver | None,
        overrides: dict[str, Any],
        defaults: dict[str, Any] | None = None,
    ) -> Any:
        component = self.component(kind)
        cls = load_plugin(kind, component.flavor)
        # Project defaults (the local store's folder) only for flavors that live in the project.
        defaults = defaults if getattr(cls, "in_project", False) else {}
        config = {**(defaults or {}), **component.config, **overrides}
        if resolve is not None:
            config = resolve(config, f"{kind.replace('_', ' ')} '{component.name}'")
        try:
            return cls(**config)
        except TypeError as exc:
            raise ConfigError(
                f"{kind.replace('_', ' ')} '{component.name}' (flavor {component.flavor}) does not accept "
                f"its settings {sorted(config)}: {exc}"
            ) from exc

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

    @classmethod
    def from_record(cls, record: StackRecord) -> Stack:
        components = {
            kind: Component(kind, c.name, c.flavor, dict(c.config))
            for kind, c in record.components.items()
        }
        return cls(record.name, components)


def load_stack(store: MetadataStore, name: str) -> Stack:
    """A stack from the store; the default stack is created the first time it is asked for."""
    try:
        return Stack.from_record(store.get_stack(name))
    except NotFoundError:
        if name != DEFAULT_STACK:
            raise
    for kind, flavor in (("orchestrator", "local"), ("artifact_store", "local")):
        try:
            store.get_component(kind, DEFAULT_COMPONENT)
        except NotFoundError:
            store.save_component(kind, DEFAULT_COMPONENT, flavor, {})
    record = store.save_stack(
        DEFAULT_STACK, {"orchestrator": DEFAULT_COMPONENT, "artifact_store": DEFAULT_COMPONENT}
    )
    return Stack.from_record(record)
