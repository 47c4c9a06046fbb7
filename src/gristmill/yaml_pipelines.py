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
from gristmill.options import RunConfig, StepOptions, adapter, json_schema
from gristmill.pipelines import Pipeline
from gristmill.spec import (
    STEP_ID_PATTERN,
    InputRef,
    ParameterSpec,
    PipelineSpec,
    StepSpec,
    json_type_of,
    referenced_param,
)
from gristmill.steps import Step

SOURCE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-.]*$"
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
# Step settings that set a step option; every other key is a free setting (resources,
# step_operator, experiment_tracker, ...), passed to the step's settings.
OPTION_KEYS = tuple(n for n in StepOptions.__dataclass_fields__ if n != "settings")
PARAMETER_KEYS = {"type", "default", "required", "description"}
JsonType = Literal["int", "float", "str", "bool", "list", "dict", "any"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepModel(_Strict):
    uses: str = Field(
        pattern=SOURCE_PATTERN, description="The step function, as 'package.module:function'."
    )
    inputs: dict[str, str] = Field(
        default_factory=dict, description="Argument → 'step' (its only output) or 'step.output'."
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
    ) -> None:
        self.path = path
        self._spec = spec
        self._functions = functions
        self._name = name
        self.config = config
        self.__doc__ = description

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
    spec, functions = _build_spec(document, model)
    return YamlPipeline(
        Path(path).resolve(),
        spec,
        functions,
        name=spec.name,
        config=RunConfig(enable_cache=model.settings.enable_cache, stack=model.stack),
        description=model.description,
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
) -> tuple[PipelineSpec, dict[str, Step[Any]]]:
    parameters = {name: _parameter(document, name, raw) for name, raw in model.parameters.items()}
    functions: dict[str, Step[Any]] = {}
    for step_id, step_model in model.steps.items():
        path = ("steps", step_id)
        if not STEP_ID_PATTERN.fullmatch(str(step_id)):
            raise document.error(
                path, f"step id '{step_id}' is not valid: use letters, digits, '_' or '-'", key=True
            )
        functions[step_id] = _import_step(document, (*path, "uses"), step_model.uses)
    steps: list[StepSpec] = []
    for step_id, step_model in model.steps.items():
        path = ("steps", step_id)
        step = functions[step_id]
        declared = step.inputs
        inputs: dict[str, InputRef] = {}
        for arg, ref in step_model.inputs.items():
            if arg not in declared:
                raise document.error(
                    (*path, "inputs", arg),
                    f"step '{step_id}': '{step_model.uses}' has no argument '{arg}'{did_you_mean(arg, declared)}",
                    key=True,
                )
            inputs[arg] = _input_ref(document, (*path, "inputs", arg), ref, functions)
        step_parameters: dict[str, Any] = {}
        for arg, value in step_model.parameters.items():
            where = (*path, "parameters", arg)
            if arg not in declared:
                raise document.error(
                    where,
                    f"step '{step_id}': '{step_model.uses}' has no parameter '{arg}'{did_you_mean(arg, declared)}",
                    key=True,
                )
            resolved = _interpolate_env(document, where, value)
            ref_name = referenced_param(resolved)
            if ref_name is not None and ref_name not in parameters:
                raise document.error(
                    where,
                    f"'${{{ref_name}}}' is not a pipeline parameter{did_you_mean(ref_name, parameters)}; "
                    "declare it under 'parameters' (or use ${env:NAME} for an environment variable)",
                )
            step_parameters[arg] = resolved
        after = [step_model.after] if isinstance(step_model.after, str) else list(step_model.after)
        for position, other in enumerate(after):
            if other not in model.steps:
                raise document.error(
                    (*path, "after", position)
                    if isinstance(step_model.after, list)
                    else (*path, "after"),
                    f"step '{step_id}': 'after' names unknown step '{other}'{did_you_mean(other, model.steps)}",
                )
        steps.append(
            StepSpec(
                id=step_id,
                source=step.source,  # where the function is defined, however it was imported
                parameters=step_parameters,
                inputs=inputs,
                after=sorted(set(after)),
                outputs=dict(step.outputs),
                settings=_effective_settings(document, (*path, "settings"), step, step_model),
                origin=document.where(path),
            )
        )
    settings = {"enable_cache": False} if model.settings.enable_cache is False else {}
    spec = PipelineSpec(
        name=model.name,
        steps=steps,
        parameters=parameters,
        settings=settings,
        origin=document.source,
    )
    spec.validate()
    return spec, functions


def _import_step(document: YamlDocument, where: tuple[Any, ...], source: str) -> Step[Any]:
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
    if isinstance(obj, Step):
        return obj
    if callable(obj) and not isinstance(obj, type):
        return Step(obj)
    raise document.error(where, f"'{source}' is not a function or @step")


def _input_ref(
    document: YamlDocument, where: tuple[Any, ...], text: str, functions: dict[str, Step[Any]]
) -> InputRef:
    producer, dot, output = text.partition(".")
    if producer not in functions:
        raise document.error(where, f"unknown step '{producer}'{did_you_mean(producer, functions)}")
    outputs = functions[producer].outputs
    if not dot:
        if len(outputs) != 1:
            raise document.error(
                where,
                f"step '{producer}' has {len(outputs)} outputs ({', '.join(outputs) or 'none'}); "
                f"name one: '{producer}.<output>'",
            )
        return InputRef(producer, next(iter(outputs)))
    if output not in outputs:
        raise document.error(
            where, f"step '{producer}' has no output '{output}'{did_you_mean(output, outputs)}"
        )
    return InputRef(producer, output)


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


def pipeline_to_yaml(pipeline: Pipeline[Any]) -> str:
    """The YAML form of a pipeline; loading it gives the same spec (and hash)."""
    return dump_yaml(pipeline_to_document(pipeline))


def pipeline_to_document(pipeline: Pipeline[Any]) -> dict[str, Any]:
    spec, functions = pipeline.trace({})
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
        if step_spec.inputs:
            entry["inputs"] = {
                arg: ref.step if len(outputs[ref.step]) == 1 else f"{ref.step}.{ref.output}"
                for arg, ref in step_spec.inputs.items()
            }
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
