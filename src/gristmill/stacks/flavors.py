"""Component types and their flavors. A flavor is a class registered in the entry-point group
of its type; it declares its settings as a pydantic model (``config_model``, a
``module:Class`` path imported only to validate) and the packages it needs (``requires`` and
the pip ``extra`` that installs them)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gristmill._plugins import GROUPS, entry_points, load_plugin
from gristmill.errors import ConfigError, MissingIntegrationError, did_you_mean


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


def flavor_class(component_type: str, flavor: str) -> Any:
    """The class of a flavor, after checking that the packages it needs are installed."""
    check_type(component_type)
    if flavor not in entry_points(GROUPS[component_type]):
        available = flavor_names(component_type)
        hint = (
            did_you_mean(flavor, available)
            if available
            else (
                ': none is installed; integrations add them (e.g. pip install "gristmill[mlflow]")'
            )
        )
        raise ConfigError(f"unknown {component_type.replace('_', ' ')} flavor '{flavor}'{hint}")
    cls = load_plugin(component_type, flavor)
    for module in getattr(cls, "requires", ()):
        if importlib.util.find_spec(module) is None:
            raise MissingIntegrationError(
                module,
                getattr(cls, "extra", flavor),
                f"the {component_type.replace('_', ' ')} flavor '{flavor}'",
            )
    return cls


def config_model(cls: Any) -> Any:
    """The pydantic model of a flavor's settings (None when it has none)."""
    path = getattr(cls, "config_model", None)
    if not path:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def validate_config(component_type: str, flavor: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Check settings against the flavor's model; returns them as given (with values coerced
    to their declared types). Secret references (``{{ secret.NAME.KEY }}``) stay as they are."""
    from pydantic import ValidationError

    from gristmill.stacks.secrets import has_reference

    cls = flavor_class(component_type, flavor)
    model = config_model(cls)
    if model is None:
        if config:
            raise ConfigError(
                f"the {component_type.replace('_', ' ')} flavor '{flavor}' takes no settings"
            )
        return {}
    for name in getattr(cls, "secret_fields", ()):
        value = config.get(name)
        if isinstance(value, str) and not has_reference(value):
            raise ConfigError(
                f"'{name}' is a credential: keep it in a secret, not in the component's settings. "
                f"`gristmill secret create NAME {name}=...`, then {name}='{{{{ secret.NAME.{name} }}}}'"
            )
    unknown = [k for k in config if k not in model.model_fields]
    if unknown:
        raise ConfigError(
            f"the {component_type.replace('_', ' ')} flavor '{flavor}' has no setting '{unknown[0]}'"
            f"{did_you_mean(unknown[0], model.model_fields)}"
        )
    try:
        validated = model.model_validate(dict(config))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"invalid settings for {component_type.replace('_', ' ')} flavor '{flavor}': {problems}"
        ) from None
    coerced = validated.model_dump(mode="json")
    result = {}
    for key, value in config.items():
        if isinstance(value, str) and has_reference(value):
            result[key] = value  # resolved when the component is used, never stored resolved
        else:
            result[key] = coerced.get(key, value)
    return result


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
