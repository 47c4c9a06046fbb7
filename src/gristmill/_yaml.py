"""YAML in and out, keeping where every value came from, so errors in a YAML file can say
``pipeline.yaml:12:7``. Also turns pydantic validation errors into such messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gristmill.errors import ConfigError, did_you_mean

Location = tuple[Any, ...]


class YamlDocument:
    """Parsed YAML plus the line and column of each value (and of each mapping key)."""

    def __init__(self, data: Any, source: str, marks: dict[Location, tuple[int, int]]):
        self.data = data
        self.source = source
        self._marks = marks

    def where(self, path: Location, *, key: bool = False) -> str:
        """``file:line:col`` of the value at ``path`` (or of its key), else of its nearest parent."""
        probe = tuple(path)
        key_path = (*probe, "__key__")
        if key and key_path in self._marks:
            line, col = self._marks[key_path]
            return f"{self.source}:{line}:{col}"
        while probe not in self._marks and probe:
            probe = probe[:-1]
        line, col = self._marks.get(probe, (1, 1))
        return f"{self.source}:{line}:{col}"

    def error(self, path: Location, message: str, *, key: bool = False) -> ConfigError:
        return ConfigError(f"{self.where(path, key=key)}: {message}")


def load_yaml(text: str, source: str) -> YamlDocument:
    """Parse one YAML document (safe types only); duplicate keys are errors, not overwrites."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    marks: dict[Location, tuple[int, int]] = {}

    def convert(current: Any, path: Location) -> Any:
        marks[path] = (current.start_mark.line + 1, current.start_mark.column + 1)
        if isinstance(current, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in current.value:
                key = loader.construct_object(key_node, deep=True)
                where = f"{source}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise ConfigError(f"{where}: mapping keys must be plain text, not {key!r}")
                if key in result:
                    raise ConfigError(f"{where}: the key '{key}' appears twice; keep one")
                key_path = (*path, key, "__key__")
                marks[key_path] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
                result[key] = convert(value_node, (*path, key))
            return result
        if isinstance(current, yaml.SequenceNode):
            return [convert(item, (*path, i)) for i, item in enumerate(current.value)]
        try:
            return loader.construct_object(current, deep=True)
        except yaml.YAMLError as exc:
            line, col = marks[path]
            raise ConfigError(f"{source}:{line}:{col}: {exc}") from None

    data = convert(node, ()) if node is not None else None
    return YamlDocument(data, source, marks)


def read_yaml(path: str | Path) -> YamlDocument:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it ({exc})") from None
    return load_yaml(text, str(file))


def dump_yaml(data: Any) -> str:
    """Block-style YAML with keys in the order given."""
    import yaml

    return str(
        yaml.safe_dump(
            data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
        )
    )


def validation_error(
    document: YamlDocument, exc: Any, model: Any, base: Location = ()
) -> ConfigError:
    """A pydantic ValidationError as one message per problem, each with file:line:col and,
    for an unknown key, the closest valid one."""
    lines = []
    for problem in _relevant(exc.errors(), document.data, base)[:10]:
        location = (*base, *problem["loc"])
        dotted = ".".join(str(part) for part in location) or "the document"
        if problem["type"] == "extra_forbidden":
            allowed = _fields_at(model, problem["loc"][:-1])
            name = str(problem["loc"][-1])
            message = f"unknown key '{name}' in {'.'.join(map(str, location[:-1])) or 'the document'}{did_you_mean(name, allowed)}"
            lines.append(f"{document.where(location, key=True)}: {message}")
            continue
        if problem["type"] == "missing":
            lines.append(f"{document.where(location[:-1])}: {dotted} is required")
            continue
        message = problem["msg"]
        got = problem.get("input")
        if got is not None and not isinstance(got, (dict, list)):
            message += f" (got {got!r})"
        lines.append(f"{document.where(location)}: {dotted}: {message}")
    return ConfigError("\n".join(lines))


def _relevant(problems: list[dict[str, Any]], data: Any, base: Location) -> list[dict[str, Any]]:
    """Pydantic reports a failed union once per member (``retries.int``, ``retries.RetryModel``);
    keep only the member that fits what was written (a mapping → the model, else the scalar),
    and drop member names from locations so they name keys in the file."""
    kept = []
    for problem in problems:
        value = data
        for part in base:
            value = value.get(part) if isinstance(value, dict) else None
        loc: list[Any] = []
        fits = True
        for part in problem["loc"]:
            if (isinstance(value, dict) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and part < len(value)
            ):
                value = value[part]
            elif isinstance(part, str) and (part[:1].isupper() or part in _SCALAR_BRANCHES):
                fits = fits and (isinstance(value, dict) == part[:1].isupper())
                continue  # a union member's name, not a key
            loc.append(part)
        if fits:
            kept.append({**problem, "loc": tuple(loc)})
    return kept or problems


_SCALAR_BRANCHES = {"int", "float", "str", "bool", "list[str]", "none", "list"}


def _fields_at(model: Any, loc: Sequence[Any]) -> list[str]:
    """Field names of the pydantic model reached by following ``loc`` from ``model``."""
    import typing

    current = model
    for part in loc:
        fields: Mapping[str, Any] = getattr(current, "model_fields", {})
        if isinstance(part, str) and part in fields:
            current = fields[part].annotation
        for _ in range(3):  # unwrap dict[str, M], M | None, list[M]
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if hasattr(current, "model_fields") or not args:
                break
            current = args[-1]
    return list(getattr(current, "model_fields", {}))
