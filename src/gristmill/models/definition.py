"""What a pipeline or step declares about models: ``Model`` (which model, which version),
``ArtifactConfig`` (what kind of artifact an output is for its model version) and the stage
names. Plain frozen data; no storage, no execution (``steps`` and ``options`` import it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gristmill.errors import PipelineDefinitionError


class ModelStages:
    """The stages a model version can be in. ``STAGING`` and ``PRODUCTION`` are held by one
    version of a model at a time; any number of versions can be ``ARCHIVED``."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    LATEST = "latest"  # not a stage: the newest version, as a version reference

    ALL = (NONE, STAGING, PRODUCTION, ARCHIVED)
    EXCLUSIVE = frozenset({STAGING, PRODUCTION})


# Model and version names: shown in terminals and used in URLs and "name@version" references.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
VERSION_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
ARTIFACT_KINDS = ("model", "data", "deployment")


def check_model_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > 200 or not MODEL_NAME_PATTERN.fullmatch(name):
        raise PipelineDefinitionError(
            f"model name {name!r} is not valid: use letters, digits, '_', '-' or '.', starting "
            "with a letter or '_'"
        )
    return name


def version_ref(value: Any, *, what: str = "model version") -> str | None:
    """A version reference as text: None (a new numbered version), a number ("3"), a stage
    ("production", "staging", "archived"), "latest", or a version name ("rf")."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PipelineDefinitionError(
            f"{what} {value!r}: give a number, a stage (staging, production, archived), "
            "'latest', a version name, or None for a new version"
        )
    text = str(value)
    if (isinstance(value, int) and value < 1) or (text.isdigit() and int(text) < 1):
        raise PipelineDefinitionError(f"{what} {value!r}: version numbers start at 1")
    if not VERSION_NAME_PATTERN.fullmatch(text) or len(text) > 200:
        raise PipelineDefinitionError(
            f"{what} {value!r} is not valid: use letters, digits, '_', '-' or '.'"
        )
    if text == ModelStages.NONE:
        raise PipelineDefinitionError(
            f"{what} 'none' is not a version: give a number, a stage, 'latest' or a name"
        )
    return text


def is_new_version_name(ref: str) -> bool:
    """Whether a version reference names a version (created on first use) rather than
    pointing at one (a number, a stage or 'latest')."""
    return not ref.isdigit() and ref not in (*ModelStages.ALL, ModelStages.LATEST)


@dataclass(frozen=True)
class Model:
    """A model in the registry, as a pipeline or step uses it.

    ``version=None`` creates the next numbered version when the run starts; a number
    (``3``), a stage (``"production"``) or ``"latest"`` reuses that version; any other
    string is a version *name*: created the first time, reused after. The other fields
    describe the model (written when it is created, updated by runs that give them).
    """

    __pydantic_config__ = {"extra": "forbid"}

    name: str
    version: str | int | None = None
    description: str | None = None
    license: str | None = None
    tags: list[str] = field(default_factory=list)
    audience: str | None = None
    use_cases: str | None = None
    limitations: str | None = None
    trade_offs: str | None = None
    ethics: str | None = None

    def __post_init__(self) -> None:
        check_model_name(self.name)
        version = version_ref(self.version, what=f"Model({self.name!r}) version")
        object.__setattr__(self, "version", version)
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise PipelineDefinitionError(f"Model({self.name!r}) tags must be a list of strings")
        object.__setattr__(self, "tags", list(self.tags))

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    @property
    def details(self) -> dict[str, str]:
        """The model card fields that were given."""
        names = ("audience", "use_cases", "limitations", "trade_offs", "ethics")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The fields given, as plain JSON (how a spec, a configuration and a run record it)."""
        data: dict[str, Any] = {"name": self.name}
        for key in ("version", "description", "license"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.tags:
            data["tags"] = list(self.tags)
        data.update(self.details)
        return data

    @classmethod
    def from_value(cls, value: Any, *, where: str = "model") -> Model:
        """A Model from a Model, a name, or a mapping (``{name: wine_clf, version: rf}``)."""
        if isinstance(value, Model):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown or "name" not in value:
                problem = f"unknown field(s) {sorted(unknown)}" if unknown else "no name"
                raise PipelineDefinitionError(
                    f"{where}: {problem}; a model is {{name: ..., version: ...}} with optional "
                    "description, license, tags, audience, use_cases, limitations, trade_offs, "
                    "ethics"
                )
            return cls(**value)
        raise PipelineDefinitionError(
            f"{where} must be a gristmill.Model, a model name or a mapping, not {value!r}"
        )

    def get_artifact(self, name: str) -> Any:
        """A reference to artifact ``name`` of this model's version, to pass to a step in a
        pipeline's body: resolved when each run starts (so ``Model("clf_model",
        version="production").get_artifact("clf")`` is whatever version is in production
        then), recorded as the step's input. Outside a pipeline, read it with
        ``Client().get_model_version(name, version).get_artifact(name)``."""
        from gristmill.spec import ExternalArtifact

        return ExternalArtifact(f"{name}@{self.version or ModelStages.LATEST}", model=self.name)


@dataclass(frozen=True)
class ArtifactConfig:
    """How a step output is recorded: ``Annotated[T, ArtifactConfig(name="clf",
    is_model_artifact=True)]``. ``name`` names the output and its artifact (like
    ``Annotated[T, "clf"]``); for a run with a model, the output is linked to the model
    version as a model artifact, a deployment artifact, or (neither flag) a data artifact.
    ``tags`` are recorded as the artifact version's ``tags`` metadata."""

    name: str | None = None
    is_model_artifact: bool = False
    is_deployment_artifact: bool = False
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise PipelineDefinitionError(f"ArtifactConfig name {self.name!r} must be a string")
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise PipelineDefinitionError("ArtifactConfig tags must be a list of strings")
        object.__setattr__(self, "tags", tuple(self.tags))

    @property
    def kind(self) -> str:
        """How the output is linked to a model version: model, deployment or data."""
        if self.is_model_artifact:
            return "model"
        if self.is_deployment_artifact:
            return "deployment"
        return "data"
