"""YAML pipelines, fully equivalent to Python ones: a ``pipeline.yaml`` loads into the same
PipelineSpec (same hash, same cache hits) as the Python pipeline it describes, and any
pipeline exports to YAML. The format is a pydantic model, published as a JSON Schema
(``gristmill schema pipeline``); errors point at ``file:line:column``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gristmill._source import import_source
from gristmill._yaml import YamlDocument, dump_yaml, read_yaml, validation_error
from gristmill.errors import PipelineDefinitionError, did_you_mean
from gristmill.models.definition import Model
from gristmill.options import RunConfig, StepOptions, adapter, json_schema
from gristmill.pipelines import Pipeline
from gristmill.spec import (
    STEP_ID_PATTERN,
    ExternalInput,
    InputRef,
    ParameterSpec,
    PipelineSpec,
    StepSpec,
    external_input_from_dict,
    json_type_of,
    param_ref,
    referenced_param,
)
from gristmill.steps import Step

SOURCE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-.]*$"
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
# Step settings that set a step option (cache, resources, step_operator, ...); every other key
# is a free setting (experiment_tracker, ...), passed to the step's settings.
OPTION_KEYS = tuple(n for n in StepOptions.__dataclass_fields__ if n != "settings")
PARAMETER_KEYS = {"type", "default", "required", "description"}
JsonType = Literal["int", "float", "str", "bool", "list", "dict", "any"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArtifactInputModel(_Strict):
    """An input fed by an artifact version of an earlier run, or by DVC-tracked data."""

    artifact: str | None = Field(
        default=None,
        description="'name:version', or 'name' for the latest version when the run starts; "
        "'name@stage' (or @latest, @3, @version_name): that artifact of a model's version.",
    )
    model: str | None = Field(
        default=None,
        description="With artifact: 'name@stage': the model whose version it is (needed when "
        "the artifact belongs to several models).",
    )
    artifact_id: str | None = Field(default=None, description="An artifact version's id.")
    dvc: str | None = Field(
        default=None,
        description="A DVC-tracked path, relative to the DVC repository's root; the step gets "
        "a pathlib.Path to its data.",
    )
    rev: str | None = Field(
        default=None,
        description="With dvc: the git revision whose data to use (default: the workspace).",
    )
    repo: str | None = Field(
        default=None, description="With dvc: the DVC repository (a path or git URL)."
    )


class StepModel(_Strict):
    uses: str = Field(
        pattern=SOURCE_PATTERN, description="The step function, as 'package.module:function'."
    )
    inputs: dict[str, str | ArtifactInputModel] = Field(
        default_factory=dict,
        description="Argument → 'step' (its only output), 'step.output', or an artifact version "
        "of an earlier run: {artifact: 'name:version'} ('name' alone: the latest) or "
        "{artifact_id: '...'}, or DVC-tracked data: {dvc: 'data/raw.csv', rev: 'v1'}.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Argument → value; '${name}' is a pipeline parameter, '${env:NAME}' an environment variable.",
    )
    after: list[str] | str = Field(
        default_factory=list, description="Steps that must finish first."
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Step options (see StepOptions), plus free settings."
    )
    description: str | None = None


class ParameterModel(_Strict):
    type: JsonType = "any"
    default: Any = None
    required: bool = False
    description: str | None = None


class PipelineSettingsModel(_Strict):
    enable_cache: bool | None = None


class PipelineFileModel(_Strict):
    """A gristmill pipeline."""

    model_config = ConfigDict(extra="forbid", title="gristmill pipeline")

    name: str = Field(pattern=NAME_PATTERN, description="The pipeline's name.")
    description: str | None = None
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Name → default value, or {type, default, required, description}.",
    )
    settings: PipelineSettingsModel = Field(default_factory=PipelineSettingsModel)
    stack: str | None = Field(None, description="The stack to run on (default: the active stack).")
    model: dict[str, Any] | str | None = Field(
        None,
        description="The model whose version each run creates or uses: {name, version, "
        "description, license, tags}; version: a number, stage, 'latest' or a name.",
    )
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="Name -> 'step' or 'step.output': what calling this pipeline inside another "
        "returns.",
    )
    steps: dict[str, StepModel] = Field(min_length=1, description="Step id → step, in order.")


def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema of pipeline files."""
    schema = PipelineFileModel.model_json_schema()
    # Parameters are validated by hand (a short form is any JSON value): describe both forms.
    schema["$defs"]["ParameterModel"] = ParameterModel.model_json_schema()
    schema["properties"]["parameters"]["additionalProperties"] = {
        "anyOf": [{"$ref": "#/$defs/ParameterModel"}, {}]
    }
    # A step's settings are StepOptions written flat: options, plus any free setting.
    options = json_schema(StepOptions)
    schema["$defs"].update(options.pop("$defs", {}))
    options["additionalProperties"] = True
    options["description"] = "Step options; any other key is a free setting (resources, ...)."
    schema["$defs"]["StepOptions"] = options
    schema["$defs"]["StepModel"]["properties"]["settings"] = {"$ref": "#/$defs/StepOptions"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# -- loading -------------------------------------------------------------------------------------


class YamlPipeline(Pipeline[Any]):
    """A pipeline defined in a YAML file: call it like any pipeline."""

    def __init__(
        self,
        path: Path,
        spec: PipelineSpec,
        functions: dict[str, Step[Any]],
        *,
        name: str,
        config: RunConfig,
        description: str | None = None,
        outputs: Mapping[str, InputRef] | None = None,
    ) -> None:
        self.path = path
        self._spec = spec
        self._functions = functions
        self._name = name
        self.config = config
        self.__doc__ = description
        # What calling it inside another pipeline returns (its file's ``outputs:``).
        self.outputs = dict(outputs or {})

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({self.path})>"

    @property
    def parameters(self) -> dict[str, ParameterSpec]:
        return dict(self._spec.parameters)

    def _with(self, name: str, config: RunConfig) -> YamlPipeline:
        return YamlPipeline(
            self.path,
            self._spec,
            self._functions,
            name=name,
            config=config,
            description=self.__doc__,
            outputs=self.outputs,
        )

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args:
            raise PipelineDefinitionError(
                f"pipeline '{self.name}' ({self.path}) is defined in YAML: pass parameters by name"
            )
        unknown = [k for k in kwargs if k not in self._spec.parameters]
        if unknown:
            from gristmill.errors import ParameterError

            raise ParameterError(
                f"pipeline '{self.name}' ({self.path}) has no parameter '{unknown[0]}'"
                f"{did_you_mean(unknown[0], self._spec.parameters)}"
            )
        return dict(kwargs)

    def inline(self, *args: Any, **kwargs: Any) -> Any:
        """Called inside another pipeline's body: its steps join that pipeline, and the outputs
        its ``outputs:`` names are returned (one placeholder, or a mapping by name)."""
        from gristmill.options import StepOptions
        from gristmill.pipelines import OutputRef, StepOutputs
        from gristmill.spec import unescape_literal
        from gristmill.steps import Step as StepClass
        from gristmill.steps import active_tracer

        given = self.bind(*args, **kwargs)
        values = {k: p.default for k, p in self._spec.parameters.items() if not p.required}
        values.update(given)
        missing = [name for name in self._spec.parameters if name not in values]
        if missing:
            from gristmill.errors import ParameterError

            raise ParameterError(
                f"pipeline '{self.name}' ({self.path}) is called inside another pipeline without "
                f"a value for its parameter '{missing[0]}': pass {missing[0]}=..."
            )
        produced: dict[str, Any] = {}
        for step_id in self._spec.validate():
            step_spec = self._spec.step(step_id)
            function = self._functions[step_id]
            own = StepClass(
                function.func,
                name=function.name,
                options=StepOptions.from_spec(step_spec.settings),
            )
            call: dict[str, Any] = {}
            for name, raw in step_spec.parameters.items():
                ref = referenced_param(raw)
                call[name] = values[ref] if ref is not None else unescape_literal(raw)
            for arg, input_ref in step_spec.inputs.items():
                call[arg] = _pick(produced[input_ref.step], input_ref.output)
            call.update(step_spec.external_inputs)
            after = [produced[other] for other in step_spec.after]
            tracer = active_tracer()
            assert tracer is not None  # inline() is only called while tracing
            produced[step_id] = tracer.record(
                own, (), {**call, "after": after or None}, step_spec.origin or str(self.path)
            )
        refs = {name: _pick(produced[ref.step], ref.output) for name, ref in self.outputs.items()}
        if len(refs) == 1:
            return next(iter(refs.values()))
        if not refs:
            return None
        outputs = StepOutputs(refs.values())
        first: OutputRef = next(iter(refs.values()))
        outputs.step_id = first.step_id
        outputs.names = tuple(refs)
        return outputs

    def trace(
        self, parameters: Mapping[str, Any] | None = None
    ) -> tuple[PipelineSpec, dict[str, Step[Any]]]:
        spec = self._spec
        if self.name != spec.name:
            spec = PipelineSpec.from_dict({**spec.to_dict(), "name": self.name})
        return spec, dict(self._functions)


def load_pipeline(path: str | Path) -> YamlPipeline:
    """Load a pipeline YAML file; the result is called like any pipeline."""
    document = read_yaml(path)
    if not isinstance(document.data, dict):
        raise document.error((), "a pipeline file is a mapping with 'name' and 'steps'")
    if "schedule" in document.data:
        # Accepting it would suggest the pipeline runs on time when nothing runs it.
        raise document.error(
            ("schedule",),
            "'schedule:' is not supported yet: no orchestrator here runs pipelines on a "
            "schedule, so it would be silently ignored. Remove it and run "
            f"`gristmill run {Path(path).name}` from cron or your CI's scheduler",
            key=True,
        )
    try:
        model = PipelineFileModel.model_validate(document.data)
    except ValidationError as exc:
        raise validation_error(document, exc, PipelineFileModel) from None
    spec, functions, outputs = _build_spec(document, model)
    return YamlPipeline(
        Path(path).resolve(),
        spec,
        functions,
        name=spec.name,
        config=RunConfig(
            enable_cache=model.settings.enable_cache,
            stack=model.stack,
            model=Model.from_value(model.model) if model.model is not None else None,
        ),
        description=model.description,
        outputs=outputs,
    )


def _parameter(document: YamlDocument, name: str, raw: Any) -> ParameterSpec:
    path = ("parameters", name)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
        raise document.error(path, f"parameter name '{name}' is not a valid identifier", key=True)
    if (
        isinstance(raw, dict)
        and raw
        and set(raw) <= PARAMETER_KEYS
        and ({"type", "default", "required"} & set(raw))
    ):
        try:
            model = ParameterModel.model_validate(raw)
        except ValidationError as exc:
            raise validation_error(document, exc, ParameterModel, base=path) from None
        if model.required and "default" in raw:
            raise document.error(
                path, f"parameter '{name}' is required and has a default: keep one"
            )
        spec = ParameterSpec(type=model.type, default=model.default, required=model.required)
    else:
        spec = ParameterSpec(type=_inferred_type(raw), default=raw)
    if not spec.required and spec.default is not None and spec.type != "any":
        from gristmill.spec import check_json_type

        try:
            check_json_type(spec.default, spec.type, f"default of parameter '{name}'")
        except PipelineDefinitionError as exc:
            raise document.error(path, str(exc)) from None
    return spec


def _inferred_type(value: Any) -> str:
    if value is None:
        return "any"
    return json_type_of(type(value))


def _build_spec(
    document: YamlDocument, model: PipelineFileModel
) -> tuple[PipelineSpec, dict[str, Step[Any]], dict[str, InputRef]]:
    parameters = {name: _parameter(document, name, raw) for name, raw in model.parameters.items()}
    functions: dict[str, Step[Any]] = {}
    composed: dict[str, Pipeline[Any]] = {}
    for step_id, step_model in model.steps.items():
        path = ("steps", step_id)
        if not STEP_ID_PATTERN.fullmatch(str(step_id)):
            raise document.error(
                path, f"step id '{step_id}' is not valid: use letters, digits, '_' or '-'", key=True
            )
        used = _import_uses(document, (*path, "uses"), step_model.uses)
        if isinstance(used, Pipeline):
            composed[step_id] = used
        else:
            functions[step_id] = used
    # What each entry produces: a step its own outputs; a pipeline what its body returns.
    producers: dict[str, dict[str, InputRef]] = {
        step_id: {name: InputRef(step_id, name) for name in step.outputs}
        for step_id, step in functions.items()
    }
    members: dict[str, list[str]] = {step_id: [step_id] for step_id in functions}
    steps: list[StepSpec] = []
    for step_id in _composition_order(document, model, composed):
        inner_steps, inner_functions, returned = _compose(
            document, model, step_id, composed[step_id], parameters, producers, members, steps
        )
        steps.extend(inner_steps)
        functions.update(inner_functions)
        members[step_id] = [s.id for s in inner_steps]
        producers[step_id] = _returned_refs(returned)
    for step_id, step_model in model.steps.items():
        if step_id in composed:
            continue
        path = ("steps", step_id)
        step = functions[step_id]
        declared = step.inputs
        inputs: dict[str, InputRef] = {}
        external: dict[str, ExternalInput] = {}
        for arg, ref in step_model.inputs.items():
            if arg not in declared:
                raise document.error(
                    (*path, "inputs", arg),
                    f"step '{step_id}': '{step_model.uses}' has no argument '{arg}'{did_you_mean(arg, declared)}",
                    key=True,
                )
            if isinstance(ref, ArtifactInputModel):
                external[arg] = _external_artifact(document, (*path, "inputs", arg), ref)
            else:
                inputs[arg] = _input_ref(document, (*path, "inputs", arg), ref, producers)
        step_parameters: dict[str, Any] = {}
        for arg, value in step_model.parameters.items():
            where = (*path, "parameters", arg)
            if arg not in declared:
                raise document.error(
                    where,
                    f"step '{step_id}': '{step_model.uses}' has no parameter '{arg}'{did_you_mean(arg, declared)}",
                    key=True,
                )
            step_parameters[arg] = _parameter_value(document, where, value, parameters)
        steps.append(
            StepSpec(
                id=step_id,
                source=step.source,  # where the function is defined, however it was imported
                parameters=step_parameters,
                inputs=inputs,
                after=_after(document, path, step_model, members),
                outputs=dict(step.outputs),
                settings=_effective_settings(document, (*path, "settings"), step, step_model),
                origin=document.where(path),
                external_inputs=external,
            )
        )
    outputs = {
        name: _input_ref(document, ("outputs", name), text, producers)
        for name, text in model.outputs.items()
    }
    settings = {"enable_cache": False} if model.settings.enable_cache is False else {}
    spec = PipelineSpec(
        name=model.name,
        steps=steps,
        parameters=parameters,
        settings=settings,
        origin=document.source,
    )
    spec.validate()
    return spec, functions, outputs


def _parameter_value(
    document: YamlDocument,
    where: tuple[Any, ...],
    value: Any,
    parameters: Mapping[str, ParameterSpec],
) -> Any:
    resolved = _interpolate_env(document, where, value)
    ref_name = referenced_param(resolved)
    if ref_name is not None and ref_name not in parameters:
        raise document.error(
            where,
            f"'${{{ref_name}}}' is not a pipeline parameter{did_you_mean(ref_name, parameters)}; "
            "declare it under 'parameters' (or use ${env:NAME} for an environment variable)",
        )
    return resolved


def _after(
    document: YamlDocument,
    path: tuple[Any, ...],
    step_model: StepModel,
    members: Mapping[str, list[str]],
) -> list[str]:
    """Step ids this entry waits for; a composed pipeline stands for all of its steps."""
    after = [step_model.after] if isinstance(step_model.after, str) else list(step_model.after)
    ids: set[str] = set()
    for position, other in enumerate(after):
        if other not in members:
            where = (
                (*path, "after", position)
                if isinstance(step_model.after, list)
                else (*path, "after")
            )
            raise document.error(
                where,
                f"'after' names unknown step '{other}'{did_you_mean(other, members)}",
            )
        ids.update(members[other])
    return sorted(ids)


def _composition_order(
    document: YamlDocument, model: PipelineFileModel, composed: Mapping[str, Any]
) -> list[str]:
    """Composed pipelines in an order where each comes after the composed pipelines it uses."""
    needs = {
        step_id: {
            text.partition(".")[0]
            for text in model.steps[step_id].inputs.values()
            if isinstance(text, str)
        }.union(
            [model.steps[step_id].after]
            if isinstance(model.steps[step_id].after, str)
            else model.steps[step_id].after
        )
        & set(composed)
        for step_id in composed
    }
    order: list[str] = []
    while len(order) < len(composed):
        ready = [s for s in composed if s not in order and needs[s] <= set(order)]
        if not ready:
            stuck = sorted(s for s in composed if s not in order)
            raise document.error(
                ("steps", stuck[0]),
                f"composed pipelines {', '.join(stuck)} depend on each other in a cycle",
            )
        order.append(ready[0])
    return order


def _compose(
    document: YamlDocument,
    model: PipelineFileModel,
    step_id: str,
    inner: Pipeline[Any],
    parameters: Mapping[str, ParameterSpec],
    producers: Mapping[str, dict[str, InputRef]],
    members: Mapping[str, list[str]],
    steps_so_far: list[StepSpec],
) -> tuple[list[StepSpec], dict[str, Step[Any]], Any]:
    """Inline the pipeline entry ``step_id`` uses: its steps, with ids unique in this file."""
    from gristmill.pipelines import OutputRef, parameter_placeholder, trace_inline

    path = ("steps", step_id)
    entry = model.steps[step_id]
    if entry.settings:
        raise document.error(
            (*path, "settings"),
            f"'{step_id}' uses pipeline '{inner.name}': settings apply to steps; set them on its "
            "steps (in its own definition) or with a run configuration's steps:",
            key=True,
        )
    accepted = inner.parameters
    arguments: dict[str, Any] = {}
    for section in ("inputs", "parameters"):
        for arg, raw in getattr(entry, section).items():
            where = (*path, section, arg)
            if arg not in accepted:
                raise document.error(
                    where,
                    f"step '{step_id}': pipeline '{inner.name}' has no parameter '{arg}'"
                    f"{did_you_mean(arg, accepted)}",
                    key=True,
                )
            if isinstance(raw, ArtifactInputModel):  # passed on to the steps that take it
                arguments[arg] = _external_artifact(document, where, raw)
                continue
            if section == "inputs":
                ref = _input_ref(document, where, raw, producers)
                arguments[arg] = OutputRef(ref.step, ref.output, document.where(where))
                continue
            value = _parameter_value(document, where, raw, parameters)
            outer = referenced_param(value)
            if outer is not None:
                declared = parameters[outer]
                value = parameter_placeholder(
                    declared.default
                    if not declared.required
                    else _TYPE_PLACEHOLDERS.get(declared.type),
                    outer,
                )
            arguments[arg] = value
    taken = set(model.steps) | {s.id for s in steps_so_far}
    try:
        inner_steps, inner_functions, returned = trace_inline(
            inner, arguments, taken=taken, pipeline_name=model.name
        )
    except PipelineDefinitionError as exc:
        raise document.error(path, f"composing pipeline '{inner.name}': {exc}") from None
    waits_for = _after(document, path, entry, members)
    for inner_step in inner_steps:
        inner_step.after = sorted(set(inner_step.after) | set(waits_for))
    return inner_steps, inner_functions, returned


def _pick(outputs: Any, name: str) -> Any:
    """One output of a traced step invocation: the placeholder itself when it has one."""
    from gristmill.pipelines import StepOutputs

    return outputs[name] if isinstance(outputs, StepOutputs) else outputs


_TYPE_PLACEHOLDERS = {"int": 0, "float": 0.0, "str": "", "list": [], "dict": {}}


def _returned_refs(returned: Any) -> dict[str, InputRef]:
    """What a composed pipeline returned, by output name: one output is 'output' (or its
    step output's name), several keep their names."""
    from gristmill.pipelines import OutputRef, StepOutputs

    if isinstance(returned, OutputRef):
        return {returned.name: InputRef(returned.step_id, returned.name)}
    if isinstance(returned, StepOutputs):
        return {
            name: InputRef(ref.step_id, ref.name)
            for name, ref in zip(returned.names, returned, strict=True)
        }
    if isinstance(returned, dict):
        return {
            str(name): InputRef(ref.step_id, ref.name)
            for name, ref in returned.items()
            if isinstance(ref, OutputRef)
        }
    if isinstance(returned, (tuple, list)):
        return {
            f"output_{i}": InputRef(ref.step_id, ref.name)
            for i, ref in enumerate(returned)
            if isinstance(ref, OutputRef)
        }
    return {}


def _import_uses(
    document: YamlDocument, where: tuple[Any, ...], source: str
) -> Step[Any] | Pipeline[Any]:
    module_name, _, attribute = source.partition(":")
    try:
        obj = import_source(source)
    except ModuleNotFoundError as exc:
        raise document.error(
            where, f"cannot import module '{module_name}' for '{source}': {exc}"
        ) from None
    except AttributeError:
        import importlib

        names = [n for n in dir(importlib.import_module(module_name)) if not n.startswith("_")]
        raise document.error(
            where, f"module '{module_name}' has no '{attribute}'{did_you_mean(attribute, names)}"
        ) from None
    except ImportError as exc:
        raise document.error(where, f"cannot import '{source}': {exc}") from None
    if isinstance(obj, (Step, Pipeline)):
        return obj
    if callable(obj) and not isinstance(obj, type):
        return Step(obj)
    raise document.error(where, f"'{source}' is not a function, a @step or a pipeline")


def _external_artifact(
    document: YamlDocument, where: tuple[Any, ...], model: ArtifactInputModel
) -> ExternalInput:
    try:
        return external_input_from_dict(model.model_dump(exclude_none=True))
    except PipelineDefinitionError as exc:
        raise document.error(where, str(exc)) from None


def _input_ref(
    document: YamlDocument,
    where: tuple[Any, ...],
    text: str,
    producers: Mapping[str, dict[str, InputRef]],
) -> InputRef:
    producer, dot, output = str(text).partition(".")
    if producer not in producers:
        raise document.error(where, f"unknown step '{producer}'{did_you_mean(producer, producers)}")
    outputs = producers[producer]
    if not dot:
        if len(outputs) != 1:
            raise document.error(
                where,
                f"step '{producer}' has {len(outputs)} outputs ({', '.join(outputs) or 'none'}); "
                f"name one: '{producer}.<output>'",
            )
        return next(iter(outputs.values()))
    if output not in outputs:
        raise document.error(
            where, f"step '{producer}' has no output '{output}'{did_you_mean(output, outputs)}"
        )
    return outputs[output]


def _interpolate_env(document: YamlDocument, where: tuple[Any, ...], value: Any) -> Any:
    if not isinstance(value, str) or "${env:" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name, default)
        if found is None:
            raise document.error(
                where,
                f"environment variable {name} is not set; set it or give a default: ${{env:{name}:-value}}",
            )
        return found

    return ENV_REF.sub(replace, value)


def _effective_settings(
    document: YamlDocument, where: tuple[Any, ...], step: Step[Any], model: StepModel
) -> dict[str, Any]:
    """The step's own options with the YAML settings applied: what tracing the same step, with
    the same options, would record."""
    from pydantic import ValidationError

    try:
        given: StepOptions = adapter(StepOptions).validate_python(StepOptions.nest(model.settings))
    except ValidationError as exc:
        raise validation_error(document, exc, StepOptions, base=where) from None
    return step.options.merged(given).to_spec()


# -- exporting -----------------------------------------------------------------------------------


def pipeline_to_yaml(
    pipeline: Pipeline[Any], parameters: Mapping[str, Any] | None = None, *, freeze: bool = False
) -> str:
    """The YAML form of a pipeline; loading it gives the same spec (and hash)."""
    return dump_yaml(pipeline_to_document(pipeline, parameters, freeze=freeze))


def pipeline_to_document(
    pipeline: Pipeline[Any], parameters: Mapping[str, Any] | None = None, *, freeze: bool = False
) -> dict[str, Any]:
    """The YAML document of ``pipeline`` traced with ``parameters`` (its defaults otherwise).

    YAML has no branches: when the body's graph depends on parameter values, the export is
    refused unless ``freeze``; then the file holds the graph of the values given, which become
    its defaults."""
    given = dict(parameters or {})
    branching = [] if isinstance(pipeline, YamlPipeline) else pipeline.graph_parameters(given)
    if branching and not freeze:
        values = {
            n: given.get(n, p.default) for n, p in pipeline.parameters.items() if n in branching
        }
        shown = ", ".join(f"{n}={v!r}" for n, v in values.items())
        raise PipelineDefinitionError(
            f"pipeline '{pipeline.name}' branches on parameter(s) {', '.join(branching)} (its "
            "body tests or compares them), so its steps depend on their values. YAML has no "
            f"branches: exported now, the file would always run the steps of {shown} and "
            "ignore other values. Export each variant you need with -p NAME=VALUE --freeze "
            "(the file then defaults to those values)"
        )
    references = {} if isinstance(pipeline, YamlPipeline) else pipeline.bool_references(given)
    spec, functions = pipeline.trace(given)
    for step_spec in spec.steps:  # bools reach steps by value: write them as the references
        for arg in step_spec.parameters:
            name = references.get(f"{step_spec.id}.{arg}")
            if name is not None and not (freeze and name in given):
                step_spec.parameters[arg] = param_ref(name)
    if freeze:
        spec.parameters = {
            name: ParameterSpec(type=p.type, default=given[name], required=False)
            if name in given
            else p
            for name, p in spec.parameters.items()
        }
    document: dict[str, Any] = {"name": spec.name}
    description = (getattr(pipeline, "__doc__", None) or "").strip().splitlines()
    if description:
        document["description"] = description[0]
    if spec.parameters:
        document["parameters"] = {name: _export_parameter(p) for name, p in spec.parameters.items()}
    if spec.settings:
        document["settings"] = dict(spec.settings)
    if pipeline.stack_name:
        document["stack"] = pipeline.stack_name
    steps: dict[str, Any] = {}
    outputs = {s.id: s.outputs for s in spec.steps}
    for step_spec in spec.steps:
        if "<locals>" in step_spec.source or ":" not in step_spec.source:
            raise PipelineDefinitionError(
                f"step '{step_spec.id}' ({step_spec.origin}) is '{step_spec.source}', which cannot be "
                "imported by name: define the step function at module level to export the pipeline"
            )
        entry: dict[str, Any] = {"uses": step_spec.source}
        if step_spec.inputs or step_spec.external_inputs:
            entry["inputs"] = {
                arg: ref.step if len(outputs[ref.step]) == 1 else f"{ref.step}.{ref.output}"
                for arg, ref in step_spec.inputs.items()
            }
            entry["inputs"].update(
                (arg, reference.to_dict()) for arg, reference in step_spec.external_inputs.items()
            )
        if step_spec.parameters:
            entry["parameters"] = dict(step_spec.parameters)
        if step_spec.after:
            entry["after"] = list(step_spec.after)
        settings = _settings_difference(step_spec, functions.get(step_spec.id))
        if settings:
            entry["settings"] = settings
        steps[step_spec.id] = entry
    document["steps"] = steps
    return document


def _export_parameter(parameter: ParameterSpec) -> Any:
    if parameter.required:
        return {"type": parameter.type, "required": True}
    if _inferred_type(parameter.default) == parameter.type and not (
        isinstance(parameter.default, dict) and set(parameter.default) & PARAMETER_KEYS
    ):
        return parameter.default
    return {"type": parameter.type, "default": parameter.default}


def _settings_difference(step_spec: StepSpec, traced: Step[Any] | None) -> dict[str, Any]:
    """What the YAML must say so that the imported function's own options become the
    options this invocation used."""
    base = import_source(step_spec.source)
    base_settings = base.options.to_spec() if isinstance(base, Step) else {}
    wanted = step_spec.settings
    result: dict[str, Any] = {}
    for key in OPTION_KEYS:
        if wanted.get(key) != base_settings.get(key):
            if key not in wanted:
                raise PipelineDefinitionError(
                    f"step '{step_spec.id}': its '{key}' option was removed from what "
                    f"'{step_spec.source}' declares, which YAML cannot express"
                )
            result[key] = wanted[key]
    free_wanted = wanted.get("settings", {})
    free_base = base_settings.get("settings", {})
    for key, value in free_wanted.items():
        if free_base.get(key) != value:
            result[key] = value
    missing = set(free_base) - set(free_wanted)
    if missing:
        raise PipelineDefinitionError(
            f"step '{step_spec.id}': settings {sorted(missing)} of '{step_spec.source}' were removed, "
            "which YAML cannot express"
        )
    return result


def write_pipeline_yaml(pipeline: Pipeline[Any], path: str | Path) -> Path:
    target = Path(path)
    target.write_text(pipeline_to_yaml(pipeline), encoding="utf-8")
    return target


def is_pipeline_file(target: str) -> bool:
    """Whether a CLI target names a YAML pipeline file (not MODULE:PIPELINE)."""
    return target.endswith((".yaml", ".yml"))
