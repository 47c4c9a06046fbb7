"""Component types and their flavors, and the one path from a flavor name and settings to a
ready component: ``flavor_class`` (the flavor exists, imports, and its packages are installed)
→ ``validate_config`` (settings checked against the flavor's pydantic model) → ``instantiate``
(secrets resolved, the class called). ``gristmill component register``, stacks and
``with_options(orchestrator=...)`` all go through it, so a missing extra is always
MissingIntegrationError with the pip line and an unknown setting always a ConfigError.

A flavor is a ``Flavor`` subclass registered in the entry-point group of its type (or, in one
process, with ``register_flavor``); its class attributes say what it needs."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill._plugins import GROUPS, Flavor, entry_points, register, unregister
from gristmill.errors import ConfigError, MissingIntegrationError, did_you_mean

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "COMPONENT_TYPES",
    "ComponentType",
    "Flavor",
    "check_type",
    "config_model",
    "describe_flavor",
    "flavor_class",
    "flavor_names",
    "instantiate",
    "register_flavor",
    "unregister_flavor",
    "validate_config",
]

# Turns the secret references in settings into values: (settings, where) → resolved settings.
Resolver = Callable[[Mapping[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class ComponentType:
    name: str
    flag: str | None
    required: bool
    description: str


COMPONENT_TYPES: dict[str, ComponentType] = {
    t.name: t
    for t in (
        ComponentType("orchestrator", "-o", True, "decides where and when steps run"),
        ComponentType("artifact_store", "-a", True, "keeps artifact bytes (local, s3, gcs, azure)"),
        ComponentType("step_operator", "-s", False, "runs individual steps on special hardware"),
        ComponentType(
            "experiment_tracker", "-e", False, "mirrors metrics to a tracker (MLflow, W&B)"
        ),
        ComponentType("model_deployer", "-d", False, "serves model versions"),
        ComponentType("image_builder", "-i", False, "builds images for containerized steps"),
        ComponentType("container_registry", "-r", False, "stores built images"),
        ComponentType("alerter", None, False, "sends notifications"),
    )
}


def check_type(component_type: str) -> ComponentType:
    if component_type not in COMPONENT_TYPES:
        raise ConfigError(
            f"unknown component type '{component_type}'{did_you_mean(component_type, COMPONENT_TYPES)}"
        )
    return COMPONENT_TYPES[component_type]


def flavor_names(component_type: str) -> list[str]:
    check_type(component_type)
    return sorted(entry_points(GROUPS[component_type]))


def register_flavor(component_type: str, flavor: str, cls: type[Flavor]) -> None:
    """Make ``cls`` the ``flavor`` of ``component_type`` in this process, as an installed
    entry point would (tests, notebooks, plugins not packaged yet)."""
    check_type(component_type)
    register(component_type, flavor, cls)


def unregister_flavor(component_type: str, flavor: str) -> None:
    """Forget a flavor given to ``register_flavor``."""
    check_type(component_type)
    unregister(component_type, flavor)


def _label(component_type: str, flavor: str, name: str | None = None) -> str:
    kind = component_type.replace("_", " ")
    if name and name != flavor:
        return f"{kind} '{name}' (flavor {flavor})"
    return f"the {kind} flavor '{flavor}'"


def flavor_class(component_type: str, flavor: str) -> type[Flavor]:
    """The class of a flavor, after checking that it imports and that the packages it needs
    are installed (MissingIntegrationError with the pip line when not)."""
    check_type(component_type)
    found = entry_points(GROUPS[component_type])
    if flavor not in found:
        available = flavor_names(component_type)
        hint = (
            did_you_mean(flavor, available)
            if available
            else (
                ': none is installed; integrations add them (e.g. pip install "gristmill[mlflow]")'
            )
        )
        raise ConfigError(f"unknown {component_type.replace('_', ' ')} flavor '{flavor}'{hint}")
    entry = found[flavor]
    try:
        cls = entry.load()
    except ImportError as exc:
        # A plugin module that imports its package at the top: the same error as `requires`.
        if isinstance(exc, MissingIntegrationError):
            raise
        dist = getattr(getattr(entry, "dist", None), "name", None)
        third_party = dist is not None and dist.lower() != "gristmill"
        raise MissingIntegrationError(
            exc.name or str(exc),
            flavor,
            _label(component_type, flavor),
            requirement=dist if third_party else None,
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Flavor)):
        raise ConfigError(
            f"{_label(component_type, flavor)} is registered as {entry.value}, which is not a "
            "flavor class: subclass gristmill.stacks.flavors.Flavor (or Orchestrator, "
            "ArtifactStore) and declare its config_model, requires and extra"
        )
    for module in cls.requires:
        if not _importable(module):
            raise MissingIntegrationError(
                module, cls.extra or flavor, _label(component_type, flavor)
            )
    return cls


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent package is missing
        return False


def config_model(cls: type[Flavor]) -> type[BaseModel] | None:
    """The pydantic model of a flavor's settings (None when it takes none)."""
    if not cls.config_model:
        return None
    module, _, name = cls.config_model.partition(":")
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model


def validate_config(
    component_type: str, flavor: str, config: Mapping[str, Any], *, name: str | None = None
) -> dict[str, Any]:
    """Check settings against the flavor's model; returns them as given (with values coerced
    to their declared types). Secret references (``{{ secret.NAME.KEY }}``) stay as they are."""
    cls = flavor_class(component_type, flavor)
    label = _label(component_type, flavor, name)
    if not config and cls.settings_optional:
        return {}  # its model's defaults stand: nothing to validate, no pydantic import
    if not cls.config_model:  # nothing to validate: no pydantic import for it
        if config:
            raise ConfigError(
                f"{label} takes no settings, but was given {', '.join(map(repr, sorted(config)))}"
            )
        return {}
    from pydantic import ValidationError

    from gristmill._yaml import plain_problem
    from gristmill.stacks.secrets import has_reference

    model = config_model(cls)
    assert model is not None  # the class names one (checked above)
    for field in cls.secret_fields:
        value = config.get(field)
        if isinstance(value, str) and not has_reference(value):
            raise ConfigError(
                f"'{field}' is a credential: keep it in a secret, not in the settings of {label}. "
                f"`gristmill secret create NAME {field}=...`, then {field}='{{{{ secret.NAME.{field} }}}}'"
            )
    unknown = [k for k in config if k not in model.model_fields]
    if unknown:
        raise ConfigError(
            f"{label} has no setting '{unknown[0]}'{did_you_mean(unknown[0], model.model_fields)}"
        )
    try:
        validated = model.model_validate(dict(config))
    except ValidationError as exc:
        problems = "; ".join(
            f"setting '{'.'.join(map(str, e['loc'])) or '?'}' {plain_problem(e, model, e['loc'])}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings for {label}: {problems}") from None
    coerced = validated.model_dump(mode="json")
    result = {}
    for key, value in config.items():
        if isinstance(value, str) and has_reference(value):
            result[key] = value  # resolved when the component is used, never stored resolved
        else:
            result[key] = coerced.get(key, value)
    return result


def instantiate(
    component_type: str,
    flavor: str,
    config: Mapping[str, Any],
    *,
    name: str | None = None,
    resolve: Resolver | None = None,
    defaults: Mapping[str, Any] | None = None,
    validated: bool = False,
) -> Any:
    """A ready component: the flavor's class (packages checked), its settings validated
    (skipped when ``validated``: settings read back from the store were validated when they
    were saved, and the run path stays free of pydantic), project ``defaults`` for flavors that
    live in the project, secret references resolved, and the class called."""
    cls = flavor_class(component_type, flavor)
    label = _label(component_type, flavor, name)
    settings = dict(config)
    if not validated:
        settings = validate_config(component_type, flavor, settings, name=name)
    if defaults and cls.in_project:
        settings = {**defaults, **settings}
    if resolve is not None:
        settings = resolve(settings, label)
    try:
        return cls(**settings)
    except TypeError as exc:
        raise ConfigError(
            f"{label} does not accept its settings {sorted(settings)}: {exc}"
        ) from exc
    except ImportError as exc:
        if isinstance(exc, MissingIntegrationError):
            raise
        raise MissingIntegrationError(exc.name or str(exc), cls.extra or flavor, label) from exc


def describe_flavor(component_type: str, flavor: str) -> list[dict[str, Any]]:
    """Each setting of a flavor: name, type, default, required, description."""
    model = config_model(flavor_class(component_type, flavor))
    if model is None:
        return []
    rows = []
    for name, field in model.model_fields.items():
        rows.append(
            {
                "name": name,
                "type": getattr(field.annotation, "__name__", str(field.annotation)).replace(
                    "typing.", ""
                ),
                "required": field.is_required(),
                "default": None
                if field.is_required()
                else field.get_default(call_default_factory=True),
                "description": field.description or "",
            }
        )
    return rows
