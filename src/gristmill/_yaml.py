"""YAML in and out, keeping where every value came from, so errors in a YAML file can say
``pipeline.yaml:12:7``. Also turns pydantic validation errors into such messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gristmill.errors import ConfigError, GristmillError, did_you_mean

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

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
    except _AliasRefused as refused:
        mark = refused.mark
        raise ConfigError(
            f"{source}:{mark.line + 1}:{mark.column + 1}: YAML aliases (*name) are not allowed "
            f"in gristmill files (found *{refused.anchor}): write the value out in full, or put "
            "it in quotes ('*...') if it is text"
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(syntax_message(exc, source)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: this is not YAML that gristmill can read: {exc}") from None
    finally:
        loader.dispose()
    marks: dict[Location, tuple[int, int]] = {}

    def convert(current: Any, path: Location) -> Any:
        marks[path] = (current.start_mark.line + 1, current.start_mark.column + 1)
        if isinstance(current, yaml.MappingNode):
            result: dict[Any, Any] = {}
            first_line: dict[Any, int] = {}
            for key_node, value_node in current.value:
                key = loader.construct_object(key_node, deep=True)
                where = f"{source}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise ConfigError(
                        f"{where}: a key must be plain text like `name:`, not {_shown(key)}"
                    )
                if key in result:
                    raise ConfigError(
                        f"{where}: the key '{key}' appears twice in the same mapping (first on "
                        f"line {first_line[key]}); keep one"
                    )
                first_line[key] = key_node.start_mark.line + 1
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
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                f"{source}:{line}:{col}: this value cannot be read ({problem}); "
                "quote it to keep it as text: '...'"
            ) from None

    data = convert(node, ()) if node is not None else None
    return YamlDocument(data, source, marks)


class _AliasRefused(Exception):
    def __init__(self, anchor: str, mark: Any) -> None:
        super().__init__(anchor)
        self.anchor = anchor
        self.mark = mark


_loader: type | None = None


def _loader_class() -> type:
    """PyYAML's safe loader, refusing aliases as it composes: an alias makes one node appear
    in many places, so a few hundred bytes of nested aliases (a "billion laughs" document)
    expand into billions of values. Pipeline and configuration files do not need them."""
    global _loader
    if _loader is None:
        import yaml

        class NoAliasLoader(yaml.SafeLoader):
            def compose_node(self, parent: Any, index: Any) -> Any:
                if self.check_event(yaml.AliasEvent):
                    event = self.peek_event()  # type: ignore[no-untyped-call]
                    raise _AliasRefused(str(event.anchor), event.start_mark)
                return super().compose_node(parent, index)

        _loader = NoAliasLoader
    return _loader


_NESTING = (
    "YAML nests by indentation, with spaces: the keys of one mapping start in the same column, "
    "and a value that is itself a mapping goes on the lines below its key, indented further:\n"
    "  steps:\n    train:\n      uses: myproject.steps:train"
)


def syntax_message(exc: Any, source: str) -> str:
    """A PyYAML scanner/parser error in the user's words, at ``file:line:column``."""
    problem = str(getattr(exc, "problem", "") or "")
    context = str(getattr(exc, "context", "") or "")
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)

    def at(mark: Any) -> str:
        mark = mark or problem_mark or context_mark
        return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source

    noticed = f" (noticed on line {problem_mark.line + 1})" if problem_mark is not None else ""
    if "'\\t'" in problem or "\t" in problem:
        return (
            f"{at(problem_mark)}: this line is indented with a tab; YAML indents with spaces "
            "only: replace the tab with spaces"
        )
    if "quoted scalar" in context:
        return (
            f"{at(context_mark)}: the quote that opens here is never closed{noticed}: end the "
            "text with the same quote ('...' or \"...\"), on the same line"
        )
    if "flow sequence" in context:
        return (
            f"{at(context_mark)}: the '[' that opens here is never closed, or two items lack a "
            f"',' between them{noticed}: write a list as [a, b] or as one '- item' per line"
        )
    if "flow mapping" in context:
        return (
            f"{at(context_mark)}: the '{{' that opens here is never closed, or two entries lack "
            f"a ',' between them{noticed}: write a mapping as {{key: value, other: value}} or as "
            "one `key: value` per line"
        )
    if "mapping values are not allowed" in problem:
        return (
            f"{at(problem_mark)}: a ':' where a value was expected: a value that contains ': ' "
            "needs quotes (name: 'a: b'); a key on a line of its own goes one level deeper. "
            + _NESTING
        )
    if "could not find expected ':'" in problem or "simple key" in context:
        return (
            f"{at(context_mark)}: this line is neither `key: value` nor `- item`: a key needs a "
            "':' and a space after it (name: value)"
        )
    if "block end" in problem or "did not find expected" in problem or "block" in context:
        found = _FOUND.get(problem.rpartition("found ")[2].strip("'"), "")
        return (
            f"{at(problem_mark)}: the indentation of this line does not match the lines above it "
            f"(a key at a different depth?{found}). " + _NESTING
        )
    if "cannot start any token" in problem:
        character = problem.partition("character ")[2].partition(" ")[0]
        return (
            f"{at(problem_mark)}: a plain value cannot start with {character} in YAML: put the "
            f"value in quotes ('{character.strip(chr(39))}...')"
        )
    words = problem or context or str(exc)
    for token, plain in _TOKENS.items():
        words = words.replace(token, plain)
    return (
        f"{at(problem_mark)}: this is not valid YAML ({words}); check the indentation, quotes "
        "and brackets on this line and the one above"
    )


_FOUND = {
    "-": ", or a list item '- ...' beside keys of a mapping",
    "<block sequence start>": ", or a list item '- ...' beside keys of a mapping",
    "?": ", or a key beside the items of a list",
}
_TOKENS = {
    "<block end>": "the end of an indented block",
    "<block mapping start>": "a new indented mapping",
    "<block sequence start>": "a new indented list",
    "<stream end>": "the end of the file",
    "<scalar>": "a value",
}


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
    """A pydantic ValidationError as one message per problem, each at ``file:line:col``, in
    the words of the file (step 'train', parameter 'n', the key 'uses') with what a correct
    entry looks like; for an unknown key, the closest valid one."""
    lines = []
    for problem in _plain_problems(exc.errors(), document.data, model, base)[:10]:
        location = (*base, *problem["loc"])
        kind = problem["type"]
        if kind in _UNKNOWN_KEY:
            name = str(location[-1])
            allowed = _fields(_model_at(model, problem["loc"][:-1]))
            parent = ".".join(map(str, location[:-1])) or "the document"
            message = f"unknown key '{name}' in {parent}{did_you_mean(name, allowed)}"
            lines.append(f"{document.where(location, key=True)}: {message}")
        elif kind == "missing":
            lines.append(f"{document.where(location[:-1])}: {_missing(location, model, base)}")
        else:
            subject = _subject(location)
            lines.append(f"{document.where(location)}: {subject} {problem['plain']}")
    return ConfigError("\n".join(dict.fromkeys(lines)))


def plain_problem(problem: Mapping[str, Any], model: Any = None, loc: Location = ()) -> str:
    """What one pydantic problem asks for, in plain words and with what was given:
    ``must be a whole number, like 3, not 'many'``."""
    kind = str(problem.get("type", ""))
    ctx = problem.get("ctx") or {}
    got = problem.get("input")
    cause = ctx.get("error")
    if isinstance(cause, GristmillError):
        return f"is not valid: {cause}"
    if kind in ("value_error", "assertion_error"):
        text = str(cause) if cause is not None else str(problem.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            text = text.removeprefix(prefix)
        return f"is not valid: {text}"
    if kind in _MAPPING_TYPES:
        return f"must be a mapping {_mapping_example(model, loc)}, not {_shown(got)}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        description = _description(_model_at(model, loc[:-1]), str(loc[-1])) if loc else ""
        return f"must look like {_pattern_words(pattern, description)}, not {_shown(got)}"
    if kind in {"literal_error", "enum"}:
        expected = str(ctx.get("expected", ""))
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        hint = did_you_mean(str(got), options) if isinstance(got, str) else ""
        return f"must be one of {expected}, not {_shown(got)}{hint}"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return f"needs at least {count} item{'s' if count != 1 else ''}{_example_suffix(loc)}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} items, not {ctx.get('actual_length')}"
    if kind in _BOUNDS:
        for key, words in _BOUNDS[kind].items():
            if key in ctx:
                return f"must be {words} {ctx[key]}, not {_shown(got)}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, not {_shown(got)}"
    text = str(problem.get("msg", "is not valid"))
    text = text.replace("Input should be", "must be").replace("Input ", "the value ")
    return f"{text[:1].lower()}{text[1:]}, not {_shown(got)}"


def _plain_problems(
    problems: list[dict[str, Any]], data: Any, model: Any, base: Location
) -> list[dict[str, Any]]:
    """Problems with locations that name keys of the file and a ``plain`` description.

    Pydantic reports a failed union once per member (``retries.int``, ``retries.Retry``):
    a member's real problem (a bad key inside the mapping written) is kept when the value
    fits that member, and members that merely do not match become one
    ``must be a whole number or a mapping with count, delay, backoff``."""
    root = data
    for part in base:
        root = root.get(part) if isinstance(root, dict) else None
    kept: list[dict[str, Any]] = []
    unions: dict[Location, list[str]] = {}
    values: dict[Location, Any] = {}
    for problem in problems:
        value = root
        loc: list[Any] = []
        fits = True
        branch_last = False
        for part in problem["loc"]:
            branch_last = False
            if (isinstance(value, dict) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
            ):
                value = value[part]
            elif _is_branch(part):
                if tuple(loc) not in unions or part not in unions[tuple(loc)]:
                    unions.setdefault(tuple(loc), []).append(part)
                fits = fits and (isinstance(value, dict) == part[:1].isupper())
                branch_last = True
                continue  # a union member's name, not a key
            loc.append(part)
        if branch_last and problem["type"] in _MISMATCH:
            values[tuple(loc)] = value
            continue  # said once per union, below
        if fits:
            kept.append(
                {
                    **problem,
                    "loc": tuple(loc),
                    "plain": plain_problem(problem, model, tuple(loc)),
                }
            )
    for where, branches in unions.items():
        if where not in values or any(p["loc"][: len(where)] == where for p in kept):
            continue
        words = " or ".join(dict.fromkeys(_branch_words(model, where, b) for b in branches))
        kept.append(
            {
                "type": "union",
                "loc": where,
                "plain": f"must be {words}, not {_shown(values[where])}",
            }
        )
    return kept


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and (
        part[:1].isupper()
        or part in _SCALAR_BRANCHES
        or part.startswith(("list[", "dict[", "function-", "literal["))
    )


_SCALAR_BRANCHES = {"int", "float", "str", "bool", "none", "list", "dict", "callable"}
_UNKNOWN_KEY = {"extra_forbidden", "unexpected_keyword_argument"}
_MAPPING_TYPES = {"dict_type", "model_type", "dataclass_type", "model_attributes_type"}
_TYPE_WORDS = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number, like 3",
    "int_parsing": "a whole number, like 3",
    "int_from_float": "a whole number, like 3",
    "float_type": "a number, like 0.5",
    "float_parsing": "a number, like 0.5",
    "string_type": "text (put it in quotes: '...')",
    "list_type": "a list, like [a, b] or one '- item' per line",
    "tuple_type": "a list, like [a, b] or one '- item' per line",
    "set_type": "a list, like [a, b] or one '- item' per line",
    "callable_type": "'module:function'",
    "none_required": "empty",
}
_MISMATCH = _MAPPING_TYPES | set(_TYPE_WORDS) | {"literal_error", "string_pattern_mismatch"}
_BOUNDS = {
    "greater_than_equal": {"ge": "at least"},
    "greater_than": {"gt": "more than"},
    "less_than_equal": {"le": "at most"},
    "less_than": {"lt": "less than"},
}
_BRANCH_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "none": "empty",
    "list": "a list",
    "dict": "a mapping",
    "list[str]": "a list of text",
    "callable": "'module:function'",
}
# Patterns of the file formats, said the way a person would.
_PATTERNS = {
    r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$": "'package.module:function' (a module path, a colon, "
    "then the function's name)",
    r"^[A-Za-z_][A-Za-z0-9_\-.]*$": "a name of letters, digits, '_', '-' and '.', starting with "
    "a letter or '_' (no spaces)",
}
_EXAMPLES = {
    "uses": "myproject.steps:train",
    "cron": "'0 3 * * *'",
    "count": "3",
    "name": "training",
    "steps": "{train: {uses: myproject.steps:train}}",
}


def _branch_words(model: Any, loc: Location, branch: str) -> str:
    if branch in _BRANCH_WORDS:
        return _BRANCH_WORDS[branch]
    if branch.startswith("list["):
        return "a list"
    if branch.startswith("dict["):
        return "a mapping"
    if branch[:1].isupper():
        for member in _members(_annotation_at(model, loc)):
            if getattr(member, "__name__", None) == branch:
                names = _fields(member)
                return f"a mapping with {', '.join(names)}" if names else "a mapping"
        return "a mapping"
    return branch


def _subject(location: Location) -> str:
    """How the file's own words name the thing at ``location``."""
    parts = [str(p) for p in location]
    if not parts:
        return "the file"
    sections = {"steps": "step", "parameters": "parameter"}
    if parts[0] in sections and len(parts) >= 2:
        owner = f"{sections[parts[0]]} '{parts[1]}'"
        rest = ".".join(parts[2:])
        return f"'{rest}' of {owner}" if rest else owner
    return f"'{'.'.join(parts)}'"


def _missing(location: Location, model: Any, base: Location) -> str:
    name = str(location[-1])
    owner = _subject(location[:-1])
    description = _description(_model_at(model, location[len(base) : -1]), name)
    example = _EXAMPLES.get(name, "...")
    text = f"{owner} is missing the key '{name}'"
    if description:
        text += f" ({description.rstrip('.')})"
    return f"{text}: add `{name}: {example}`"


def _mapping_example(model: Any, loc: Location) -> str:
    """``like `train: {uses: myproject.steps:train}``` for a step, else ``(key: value)``."""
    import typing

    key = str(loc[-1]) if loc else "key"
    annotation = _annotation_at(model, loc)
    for member in _members(annotation):
        if typing.get_origin(member) is dict:  # name → entry: show one entry
            entry = _entry_example(_model_at(model, (*loc, "name")))
            if entry:
                return f"like `{key}: {{{'train' if key == 'steps' else 'name'}: {entry}}}`"
    entry = _entry_example(_model_at(model, loc))
    if entry:
        return f"like `{key}: {entry}`"
    return "(`key: value` lines, or {key: value})"


def _entry_example(model: Any) -> str:
    names = _fields(model)
    if not names:
        return ""
    required = [n for n in names if _is_required(model, n)] or names[:1]
    return "{" + ", ".join(f"{n}: {_EXAMPLES.get(n, '...')}" for n in required) + "}"


def _example_suffix(loc: Location) -> str:
    if tuple(map(str, loc)) == ("steps",):
        return ", like\n  steps:\n    train: {uses: myproject.steps:train}"
    return ""


def _pattern_words(pattern: str, description: str = "") -> str:
    if pattern in _PATTERNS:
        return _PATTERNS[pattern]
    if description:
        return description.rstrip(".")
    return f"the pattern {pattern}"


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (the value is empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the models' fields (pydantic models and dataclasses alike) ----------------------------------


def _members(annotation: Any) -> list[Any]:
    """The members of a union (``A | B | None`` → A, B); anything else alone."""
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _field_map(model: Any) -> dict[str, tuple[Any, str, bool]]:
    """name → (annotation, description, required) of a pydantic model or a dataclass."""
    import dataclasses

    fields = getattr(model, "model_fields", None)
    if isinstance(fields, dict):
        return {n: (f.annotation, f.description or "", f.is_required()) for n, f in fields.items()}
    if isinstance(model, type) and dataclasses.is_dataclass(model):
        import typing

        try:
            hints = typing.get_type_hints(model)
        except Exception:  # an unresolvable forward reference: names are enough
            hints = {}
        return {
            f.name: (
                hints.get(f.name, f.type),
                str(f.metadata.get("description", "")),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(model)
        }
    return {}


def _fields(model: Any) -> list[str]:
    return list(_field_map(model))


def _description(model: Any, name: str) -> str:
    return _field_map(model).get(name, (None, "", False))[1]


def _is_required(model: Any, name: str) -> bool:
    return _field_map(model).get(name, (None, "", False))[2]


def _annotation_at(model: Any, loc: Sequence[Any]) -> Any:
    """The annotation reached by following ``loc`` (keys of the file) from ``model``."""
    import typing

    current = model
    for part in loc:
        fields = _field_map(_unwrap(current))
        if isinstance(part, str) and part in fields:
            current = fields[part][0]
            continue
        # A key of a dict[str, M] or an index of a list[M]: step into M.
        args = [a for a in typing.get_args(_unwrap(current, models=False)) if a is not type(None)]
        if args:
            current = args[-1]
    return current


def _unwrap(annotation: Any, *, models: bool = True) -> Any:
    """``M`` out of ``M | None``; with ``models``, also out of ``dict[str, M]``/``list[M]``."""
    import typing

    current = annotation
    for _ in range(3):
        if _field_map(current):
            return current
        args = [a for a in typing.get_args(current) if a is not type(None)]
        if not args:
            return current
        origin = typing.get_origin(current)
        if not models and origin in (dict, list):
            return current
        with_fields = [a for a in args if _field_map(a)]
        current = with_fields[0] if with_fields else args[-1]
    return current


def _model_at(model: Any, loc: Sequence[Any]) -> Any:
    """The pydantic model or dataclass of the mapping at ``loc`` (None if it is not one)."""
    target = _annotation_at(model, loc)
    for candidate in (target, *_members(target)):
        if _field_map(candidate):
            return candidate
    return None
