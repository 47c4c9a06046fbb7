"""PipelineSpec and StepSpec: the plain, hashable, JSON round-trippable form of a pipeline that
Python tracing and YAML loading both produce. This module knows nothing of functions or storage.

A step parameter that refers to a pipeline parameter is the string ``"${name}"`` (as in YAML);
a literal string that starts with ``${`` is written ``$${``.
"""

from __future__ import annotations

import heapq
import json
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from gristmill._hashing import canonical_json, hash_json
from gristmill.errors import (
    ConfigError,
    ParameterError,
    PipelineDefinitionError,
    describe_value,
    did_you_mean,
)

SPEC_VERSION = 1
# Patterns are used with ``fullmatch``: ``$`` alone also matches before a final newline.
STEP_ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
PARAM_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Names are shown in terminals and the dashboard and used in URLs: plain characters only, no
# markup brackets, no control characters. Run names may also hold spaces, ':', '+' and '@'.
PIPELINE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.:+@=, \-]*[A-Za-z0-9_.:+@=,\-])?")
MAX_NAME_CHARS = 200
# A parameter value is recorded with the run, in its spec and configuration, and printed by
# `runs show`: large data belongs in an artifact.
MAX_PARAMETER_BYTES = 64 * 1024


def param_ref(name: str) -> str:
    return "${" + name + "}"


def referenced_param(value: Any) -> str | None:
    """The pipeline parameter a step parameter value refers to, if it is a ``${name}``."""
    if isinstance(value, str):
        match = PARAM_REF.fullmatch(value)
        if match:
            return match.group(1)
    return None


def escape_literal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("${"):
        return "$" + value
    return value


def unescape_literal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$${"):
        return value[1:]
    return value


@dataclass(frozen=True)
class InputRef:
    """An input fed by ``output`` of step ``step``."""

    step: str
    output: str

    def __str__(self) -> str:
        return f"{self.step}.{self.output}"

    @classmethod
    def parse(cls, text: str) -> InputRef:
        step, _, output = text.partition(".")
        return cls(step, output or "output")


_ARTIFACT_ID = re.compile(r"[0-9a-f]{4,32}")


class ExternalArtifact:
    """An artifact version from an earlier run, passed to a step in a pipeline's body (or
    written ``inputs: {df: {artifact: "dataset:3"}}`` in YAML) as one of its inputs.

    ``ExternalArtifact("dataset:3")`` is version 3 of artifact ``dataset``;
    ``ExternalArtifact("dataset")`` its latest version when the run starts;
    ``ExternalArtifact(id="…")`` one version by id. ``ExternalArtifact("clf@production")``
    is artifact ``clf`` of the model version in stage ``production`` of the model it is
    linked to (``model="wine_clf"`` names the model when ``clf`` belongs to several); after
    ``@`` any model version reference works: a stage, ``latest``, a number or a version name.
    The spec records the reference as written (it is part of the spec's hash); the version it
    resolves to is recorded with the run, as the step run's input, and its content hash is
    part of the step's cache key.
    """

    __slots__ = ("id", "model", "model_version", "name", "version")

    name: str | None
    version: int | None
    id: str | None
    model: str | None
    model_version: str | None

    def __init__(
        self, ref: str | None = None, *, id: str | None = None, model: str | None = None
    ) -> None:
        if (ref is None) == (id is None):
            raise PipelineDefinitionError(
                'ExternalArtifact takes one reference: ExternalArtifact("name:version"), '
                'ExternalArtifact("name") for the latest version, or ExternalArtifact(id="...")'
            )
        name: str | None = None
        version: int | None = None
        model_version: str | None = None
        if id is not None:
            if not isinstance(id, str) or not _ARTIFACT_ID.fullmatch(id):
                raise PipelineDefinitionError(
                    f"ExternalArtifact(id={id!r}): an artifact version id is 4 to 32 lowercase "
                    "hex characters (`gristmill artifacts list` shows them)"
                )
        else:
            name, version, model_version = _parse_artifact_ref(ref)
        if model is not None and model_version is None:
            raise PipelineDefinitionError(
                f"ExternalArtifact({ref!r}, model={model!r}): with a model, give the artifact "
                f"and the model version, e.g. ExternalArtifact('{name}@production', model=...)"
            )
        if model is not None and (not isinstance(model, str) or not model):
            raise PipelineDefinitionError(f"ExternalArtifact: model={model!r} is not a model name")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "model_version", model_version)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ExternalArtifact is immutable (cannot set '{name}')")

    def __str__(self) -> str:
        if self.id is not None:
            return f"id={self.id}"
        if self.model_version is not None:
            return f"{self.name}@{self.model_version}"
        return f"{self.name}:{self.version}" if self.version is not None else str(self.name)

    def __repr__(self) -> str:
        if self.id is not None:
            return f"ExternalArtifact(id={self.id!r})"
        model = f", model={self.model!r}" if self.model is not None else ""
        return f"ExternalArtifact({str(self)!r}{model})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExternalArtifact) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((str(self), self.model))

    def to_dict(self) -> dict[str, str]:
        """How a spec (and YAML) writes it: ``{"artifact": "name:3"}``, ``{"artifact":
        "clf@production", "model": "wine_clf"}`` or ``{"artifact_id": id}``."""
        if self.id is not None:
            return {"artifact_id": self.id}
        data = {"artifact": str(self)}
        if self.model is not None:
            data["model"] = self.model
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> ExternalArtifact:
        if isinstance(data, dict) and set(data) == {"artifact"}:
            return cls(_text(data["artifact"], where))
        if isinstance(data, dict) and set(data) == {"artifact", "model"}:
            return cls(_text(data["artifact"], where), model=_text(data["model"], where))
        if isinstance(data, dict) and set(data) == {"artifact_id"}:
            return cls(id=_text(data["artifact_id"], where))
        raise PipelineDefinitionError(
            f"{where or 'an input'} is {describe_value(data)}: an input from an earlier run is "
            '{artifact: "name:version"} (or "name" for the latest), {artifact: "name@stage", '
            'model: "model name"} or {artifact_id: "..."}'
        )


class DVCPath:
    """A DVC-tracked file or folder passed to a step in a pipeline's body (or written
    ``inputs: {raw: {dvc: "data/raw.csv", rev: v1}}`` in YAML) as one of its inputs; the step
    receives a ``pathlib.Path`` to the data.

    ``rev=None`` is the data in the workspace (checked against its ``.dvc``/``dvc.lock`` entry
    when the run starts); a git revision (tag, branch, commit) is that revision's data, fetched
    by DVC into a read-only folder under ``.gristmill/``. ``repo`` is the DVC repository (a
    path or git URL; None: the one around the working directory). The spec records the
    reference as written; the run records the data's DVC md5 and git revision, and the md5 is
    part of the cache key of the steps that read it.
    """

    __slots__ = ("path", "repo", "rev")

    path: str
    rev: str | None
    repo: str | None

    def __init__(self, path: str, rev: str | None = None, repo: str | None = None) -> None:
        for label, value in (("rev", rev), ("repo", repo)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise PipelineDefinitionError(
                    f"DVCPath({path!r}, {label}={value!r}): {label} is a non-empty string or None"
                )
        if not isinstance(path, str) or not path.strip():
            raise PipelineDefinitionError(
                f"DVCPath({path!r}): give the tracked path relative to the DVC repository's "
                'root, e.g. DVCPath("data/raw.csv")'
            )
        normal = path.replace("\\", "/").strip("/")
        while normal.startswith("./"):
            normal = normal[2:]
        if path.startswith("/") or ".." in normal.split("/") or not normal:
            raise PipelineDefinitionError(
                f"DVCPath({path!r}): the path is relative to the DVC repository's root and "
                "stays inside it (no leading '/', no '..')"
            )
        object.__setattr__(self, "path", normal)
        object.__setattr__(self, "rev", rev)
        object.__setattr__(self, "repo", repo)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"DVCPath is immutable (cannot set '{name}')")

    @property
    def artifact_name(self) -> str:
        """The artifact whose versions record this path's data: ``dvc:data/raw.csv``."""
        return f"dvc:{self.path}"

    def __str__(self) -> str:
        text = self.artifact_name
        if self.repo is not None:
            text += f" in {self.repo}"
        return text + (f"@{self.rev}" if self.rev is not None else "")

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}" for k, v in (("rev", self.rev), ("repo", self.repo)) if v is not None
        )
        return f"DVCPath({self.path!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DVCPath) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def to_dict(self) -> dict[str, str]:
        """How a spec (and YAML) writes it: ``{"dvc": "data/raw.csv", "rev": "v1"}``."""
        data = {"dvc": self.path}
        if self.rev is not None:
            data["rev"] = self.rev
        if self.repo is not None:
            data["repo"] = self.repo
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> DVCPath:
        if isinstance(data, dict) and "dvc" in data and set(data) <= {"dvc", "rev", "repo"}:
            rev, repo = data.get("rev"), data.get("repo")
            return cls(
                _text(data["dvc"], where),
                rev=None if rev is None else _text(rev, where),
                repo=None if repo is None else _text(repo, where),
            )
        raise PipelineDefinitionError(
            f"{where or 'an input'} is {describe_value(data)}: a DVC-tracked input is "
            '{dvc: "data/raw.csv"}, with rev: (a git tag, branch or commit) and repo: if needed'
        )


# What a step input from outside the pipeline's own steps can be.
ExternalInput = ExternalArtifact | DVCPath


def external_input_from_dict(data: Any, where: str = "") -> ExternalInput:
    """An external input as a spec or YAML writes it: ``{artifact: ...}``, ``{artifact_id:
    ...}`` or ``{dvc: ..., rev: ..., repo: ...}``."""
    if isinstance(data, dict) and "dvc" in data:
        return DVCPath.from_dict(data, where)
    return ExternalArtifact.from_dict(data, where)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PipelineDefinitionError(
            f"{where or 'an artifact reference'} must be a string, got {describe_value(value)}"
        )
    return value


def _parse_artifact_ref(ref: Any) -> tuple[str, int | None, str | None]:
    """``name`` (latest), ``name:version``, or ``name@model_version`` (the artifact of a model
    version: a stage, ``latest``, a number or a version name)."""
    if not isinstance(ref, str) or not ref.strip():
        raise PipelineDefinitionError(
            f"ExternalArtifact({ref!r}): give 'name:version', or 'name' for the latest version"
        )
    if "@" in ref:
        name, _, model_version = ref.rpartition("@")
        if (
            not name
            or ":" in name
            or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", model_version)
        ):
            raise PipelineDefinitionError(
                f"ExternalArtifact({ref!r}): a model's artifact is 'name@stage' (production, "
                "staging, archived), 'name@latest', 'name@3' or 'name@version_name'"
            )
        return name, None, model_version
    name, sep, version = ref.rpartition(":")
    if not sep:
        return ref, None, None
    if version == "latest":
        return name, None, None
    if not version.isdigit() or int(version) < 1 or not name:
        raise PipelineDefinitionError(
            f"ExternalArtifact({ref!r}): the version after ':' must be a number (1, 2, ...) "
            "or 'latest', after the artifact's name"
        )
    return name, int(version), None


@dataclass(frozen=True)
class OutputSpec:
    """One declared output of a step: its Python type (as a dotted name) and artifact name;
    from an ``ArtifactConfig``, how it links to a run's model version (``artifact_kind``:
    model, deployment or data) and its tags."""

    type: str = "typing.Any"
    artifact_name: str | None = None
    artifact_kind: str | None = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        if self.artifact_name:
            data["artifact_name"] = self.artifact_name
        if self.artifact_kind:
            data["artifact_kind"] = self.artifact_kind
        if self.tags:
            data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class ParameterSpec:
    """A pipeline parameter: its JSON type name and default (``required`` when it has none)."""

    type: str = "any"
    default: Any = None
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        if self.required:
            data["required"] = True
        else:
            data["default"] = self.default
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParameterSpec:
        return cls(
            type=data.get("type", "any"),
            default=data.get("default"),
            required=bool(data.get("required", False)),
        )


@dataclass
class StepSpec:
    """One step invocation in a pipeline.

    ``origin`` (file:line of the invocation, or of the YAML entry) is for error messages only
    and is not part of the hash.
    """

    id: str
    source: str
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, InputRef] = field(default_factory=dict)
    after: list[str] = field(default_factory=list)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None
    # Inputs fed by artifact versions of earlier runs or DVC-tracked data (written among
    # ``inputs`` as dicts).
    external_inputs: dict[str, ExternalInput] = field(default_factory=dict)

    @property
    def function_name(self) -> str:
        return self.source.rpartition(":")[2].rpartition(".")[2]

    def upstream(self) -> set[str]:
        return {ref.step for ref in self.inputs.values()} | set(self.after)

    def to_dict(self, *, with_origin: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "source": self.source}
        if self.parameters:
            data["parameters"] = dict(self.parameters)
        if self.inputs or self.external_inputs:
            inputs: dict[str, Any] = {name: str(ref) for name, ref in self.inputs.items()}
            inputs.update((name, ext.to_dict()) for name, ext in self.external_inputs.items())
            data["inputs"] = inputs
        if self.after:
            data["after"] = sorted(self.after)
        data["outputs"] = {name: out.to_dict() for name, out in self.outputs.items()}
        if self.settings:
            data["settings"] = dict(self.settings)
        if with_origin and self.origin:
            data["origin"] = self.origin
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepSpec:
        inputs = data.get("inputs", {})
        return cls(
            id=data["id"],
            source=data["source"],
            parameters=dict(data.get("parameters", {})),
            inputs={k: InputRef.parse(v) for k, v in inputs.items() if not isinstance(v, dict)},
            external_inputs={
                k: external_input_from_dict(v, f"step '{data['id']}': input '{k}'")
                for k, v in inputs.items()
                if isinstance(v, dict)
            },
            after=list(data.get("after", [])),
            outputs={
                k: OutputSpec(
                    v.get("type", "typing.Any"),
                    v.get("artifact_name"),
                    v.get("artifact_kind"),
                    tuple(v.get("tags", ())),
                )
                for k, v in data.get("outputs", {}).items()
            },
            settings=dict(data.get("settings", {})),
            origin=data.get("origin"),
        )


@dataclass
class PipelineSpec:
    """A whole pipeline: name, parameters, step invocations in definition order, settings."""

    name: str
    steps: list[StepSpec]
    parameters: dict[str, ParameterSpec] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None

    def __post_init__(self) -> None:
        self._by_id = {s.id: s for s in self.steps}

    def __iter__(self) -> Iterator[StepSpec]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def step(self, step_id: str) -> StepSpec:
        try:
            return self._by_id[step_id]
        except KeyError:
            raise PipelineDefinitionError(
                f"pipeline '{self.name}' has no step '{step_id}'{did_you_mean(step_id, self._by_id)}"
            ) from None

    def to_dict(self, *, with_origin: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"spec_version": SPEC_VERSION, "name": self.name}
        data["parameters"] = {k: p.to_dict() for k, p in self.parameters.items()}
        if self.settings:
            data["settings"] = dict(self.settings)
        data["steps"] = [s.to_dict(with_origin=with_origin) for s in self.steps]
        if with_origin and self.origin:
            data["origin"] = self.origin
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineSpec:
        return cls(
            name=data["name"],
            steps=[StepSpec.from_dict(s) for s in data.get("steps", [])],
            parameters={
                k: ParameterSpec.from_dict(v) for k, v in data.get("parameters", {}).items()
            },
            settings=dict(data.get("settings", {})),
            origin=data.get("origin"),
        )

    @classmethod
    def from_json(cls, text: str) -> PipelineSpec:
        return cls.from_dict(json.loads(text))

    @cached_property
    def hash(self) -> str:
        """Stable over definition order of dict keys and origins; changes with any structure."""
        return hash_json(self.to_dict(with_origin=False))

    def canonical(self) -> str:
        return canonical_json(self.to_dict(with_origin=False))

    def validate(self) -> list[str]:
        """Check the graph and return step ids in a topological order (definition order kept
        among independent steps). Raises PipelineDefinitionError naming the offending step."""
        check_pipeline_name(self.name, self.origin)
        seen: set[str] = set()
        for s in self.steps:
            where = f" ({s.origin})" if s.origin else ""
            if not STEP_ID_PATTERN.fullmatch(s.id):
                raise PipelineDefinitionError(
                    f"step id {s.id!r}{where} is not valid: use letters, digits, '_' or '-', "
                    "starting with a letter"
                )
            if s.id in seen:
                raise PipelineDefinitionError(
                    f"pipeline '{self.name}' has two steps with the id '{s.id}'{where}: "
                    "give one of them another id"
                )
            seen.add(s.id)
        for s in self.steps:
            where = f" ({s.origin})" if s.origin else ""
            for arg, ref in s.inputs.items():
                if ref.step not in self._by_id:
                    raise PipelineDefinitionError(
                        f"step '{s.id}'{where}: input '{arg}' comes from unknown step "
                        f"'{ref.step}'{did_you_mean(ref.step, self._by_id)}"
                    )
                producer = self._by_id[ref.step]
                if ref.output not in producer.outputs:
                    outputs = ", ".join(f"'{o}'" for o in producer.outputs) or "none"
                    raise PipelineDefinitionError(
                        f"step '{s.id}'{where}: input '{arg}' uses output '{ref.output}' of step "
                        f"'{ref.step}', which has no such output (its outputs: {outputs})"
                        f"{did_you_mean(ref.output, producer.outputs) if producer.outputs else ''}"
                    )
            for dep in s.after:
                if dep not in self._by_id:
                    raise PipelineDefinitionError(
                        f"step '{s.id}'{where}: 'after' names unknown step "
                        f"'{dep}'{did_you_mean(dep, self._by_id)}"
                    )
            for name, value in s.parameters.items():
                ref_name = referenced_param(value)
                if ref_name is not None and ref_name not in self.parameters:
                    raise PipelineDefinitionError(
                        f"step '{s.id}'{where}: parameter '{name}' refers to pipeline parameter "
                        f"'{ref_name}', which is not declared{did_you_mean(ref_name, self.parameters)}"
                    )
        return self._topological_order()

    def _topological_order(self) -> list[str]:
        # Kahn's algorithm; a heap on definition position keeps independent steps in the order
        # they were written.
        position = {s.id: i for i, s in enumerate(self.steps)}
        remaining = {s.id: set(s.upstream()) for s in self.steps}
        downstream: dict[str, list[str]] = {s.id: [] for s in self.steps}
        for s in self.steps:
            for up in s.upstream():
                downstream[up].append(s.id)
        ready = [position[s.id] for s in self.steps if not remaining[s.id]]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            current = self.steps[heapq.heappop(ready)].id
            order.append(current)
            for child in downstream[current]:
                remaining[child].discard(current)
                if not remaining[child]:
                    heapq.heappush(ready, position[child])
        if len(order) != len(self.steps):
            stuck = [s for s in remaining if remaining[s] and s not in order]
            cycle = _find_cycle(stuck, remaining)
            origin = self._by_id[cycle[0]].origin
            where = f" ({origin})" if origin else ""
            raise PipelineDefinitionError(
                f"pipeline '{self.name}' has a cycle: {' -> '.join(cycle)}{where}; "
                "remove one of these dependencies (an input or an 'after')"
            )
        return order

    def downstream_of(self, step_ids: set[str]) -> set[str]:
        """The given steps and every step that depends on them, directly or not."""
        found = set(step_ids)
        changed = True
        while changed:
            changed = False
            for s in self.steps:
                if s.id not in found and s.upstream() & found:
                    found.add(s.id)
                    changed = True
        return found


def _find_cycle(stuck: list[str], remaining: dict[str, set[str]]) -> list[str]:
    start = stuck[0]
    path = [start]
    current = start
    visited = {start}
    while True:
        nxt = sorted(remaining[current])[0]
        if nxt in visited:
            # Reversed, so the cycle reads in the direction data flows.
            return [*path[path.index(nxt) :], nxt][::-1]
        path.append(nxt)
        visited.add(nxt)
        current = nxt


# -- parameter values: JSON, of a declared JSON type ------------------------------------

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


def check_json_type(value: Any, type_name: str, what: str) -> Any:
    """The value, if it is JSON and of the declared JSON type (ints are accepted as floats)."""
    ensure_json(value, what)
    allowed: tuple[type, ...] | None = JSON_TYPES.get(type_name)
    if value is None or allowed is None:
        return value
    if isinstance(value, bool) and type_name in ("int", "float"):
        allowed = ()
    if not isinstance(value, allowed):
        raise ParameterError(f"{what} must be {type_name}, got {describe_value(value)}")
    return float(cast(float, value)) if type_name == "float" else value


def ensure_json(value: Any, what: str) -> None:
    """A ParameterError unless ``value`` is JSON of at most MAX_PARAMETER_BYTES."""
    if isinstance(value, str) and len(value) > MAX_PARAMETER_BYTES:
        _too_large(what, len(value))  # refused before any copy of it is made
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"{what} is {describe_value(value)}, which is not JSON ({exc}): parameters must be "
            "numbers, strings, bools, None, lists or dicts of those. Pass data between steps as "
            "a step output instead, or load it inside a step"
        ) from None
    if len(text) > MAX_PARAMETER_BYTES:  # ASCII (non-ASCII is escaped): characters are bytes
        _too_large(what, len(text))


def _too_large(what: str, size: int) -> None:
    raise ParameterError(
        f"{what} is {size:,} bytes of JSON, over the {MAX_PARAMETER_BYTES // 1024} KiB limit "
        "for a parameter (parameters are recorded with every run and shown by `runs show`): "
        "pass large data as an artifact instead, a step output or a step that loads it"
    )


def check_pipeline_name(name: Any, where: str | None = None) -> str:
    """``name`` if it is a valid pipeline name, else a PipelineDefinitionError saying why."""
    return _check_name(
        name,
        "pipeline name",
        PIPELINE_NAME_PATTERN,
        where,
        "use letters, digits, '_', '-' or '.', starting with a letter or '_'",
    )


def check_component_name(name: Any, kind: str) -> str:
    """``name`` if it is a valid stack or component name (``kind`` says which), else a
    ConfigError saying why: the same rule as pipeline names."""
    try:
        return _check_name(
            name,
            f"{kind} name",
            PIPELINE_NAME_PATTERN,
            None,
            "use letters, digits, '_', '-' or '.', starting with a letter or '_'",
        )
    except PipelineDefinitionError as exc:
        raise ConfigError(str(exc)) from None


def check_run_name(name: Any, where: str | None = None) -> str:
    """``name`` if it is a valid run name, else a ConfigError saying why."""
    try:
        return _check_name(
            name,
            "run name",
            RUN_NAME_PATTERN,
            where,
            "use letters, digits, spaces and '_', '-', '.', ':', '+', '@', '=', ','"
            ", starting and ending with a letter, digit or '_'",
        )
    except PipelineDefinitionError as exc:
        raise ConfigError(str(exc)) from None


def _check_name(
    name: Any, kind: str, pattern: re.Pattern[str], where: str | None, rule: str
) -> str:
    suffix = f" ({where})" if where else ""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not pattern.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) else repr(name[:MAX_NAME_CHARS])
        if isinstance(name, str) and len(name) > MAX_NAME_CHARS:
            rule = f"at most {MAX_NAME_CHARS} characters"
        raise PipelineDefinitionError(f"{kind} {shown}{suffix} is not valid: {rule}")
    return name


def json_type_of(annotation: Any) -> str:
    """The JSON type name a Python annotation allows ('any' when it is not a simple one)."""
    if annotation in (bool, int, float, str):
        return str(annotation.__name__)
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple):
        return "list"
    if origin is dict:
        return "dict"
    return "any"
