"""Stacks: a named set of components (orchestrator, artifact store, ...), each a flavor plus
its settings, stored in the metadata store. Component classes are looked up through entry
points, so this package never imports an orchestrator module itself; every component is
built by ``flavors.instantiate``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gristmill.artifacts import ArtifactStore
from gristmill.errors import ConfigError, describe_value
from gristmill.stacks.flavors import COMPONENT_TYPES, Resolver, check_type, instantiate
from gristmill.store import MetadataStore, NotFoundError, StackRecord

DEFAULT_STACK = "default"
DEFAULT_COMPONENT = "local"

__all__ = [
    "DEFAULT_COMPONENT",
    "DEFAULT_STACK",
    "Component",
    "Resolver",
    "Stack",
    "load_stack",
]


@dataclass(frozen=True)
class Component:
    """One configured component: its type (``orchestrator``), name, flavor and settings
    (secret references unresolved)."""

    type: str
    name: str
    flavor: str
    config: dict[str, Any] = field(default_factory=dict)
    # True when the settings were validated against the flavor's model on their way in
    # (components read from the store or from a run's record); False for settings given in
    # code, which ``build`` validates first.
    validated: bool = field(default=False, compare=False, repr=False)

    @classmethod
    def from_options(cls, component_type: str, options: Mapping[str, Any]) -> Component:
        """A component given in code, e.g. ``with_options(orchestrator={"flavor":
        "local_parallel", "max_workers": 4})``: ``flavor`` plus the flavor's settings."""
        check_type(component_type)
        where = f"with_options({component_type}=...)"
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"{where} takes a mapping like {{'flavor': 'local_parallel', 'max_workers': 4}}, "
                f"not {describe_value(options)}"
            )
        settings = dict(options)
        flavor = settings.pop("flavor", None)
        if not isinstance(flavor, str) or not flavor:
            raise ConfigError(
                f"{where} needs the flavor, e.g. {{'flavor': 'local_parallel', 'max_workers': 4}}; "
                f"`gristmill component flavors {component_type}` lists them"
            )
        return cls(component_type, flavor, flavor, settings)

    def build(
        self,
        *,
        resolve: Resolver | None = None,
        defaults: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Any:
        """The ready component (see ``flavors.instantiate``)."""
        return instantiate(
            self.type,
            self.flavor,
            {**self.config, **(overrides or {})},
            name=self.name,
            resolve=resolve,
            defaults=defaults,
            validated=self.validated and not overrides,
        )

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
        return self.component(kind).build(resolve=resolve, defaults=defaults, overrides=overrides)

    def with_component(self, component: Component) -> Stack:
        """This stack with ``component`` in place of the one of its type."""
        return Stack(self.name, {**self.components, component.type: component})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "components": {k: c.to_dict() for k, c in self.components.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stack:
        components = {
            # A run's record: the settings it ran with were validated before it ran.
            kind: Component(
                c["type"], c["name"], c["flavor"], dict(c.get("config", {})), validated=True
            )
            for kind, c in data.get("components", {}).items()
        }
        return cls(data.get("name", DEFAULT_STACK), components)

    @classmethod
    def from_record(cls, record: StackRecord) -> Stack:
        components = {
            kind: Component(kind, c.name, c.flavor, dict(c.config), validated=True)
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
