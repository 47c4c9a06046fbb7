"""Source identity of user code: importable ids (``module:qualname``) and the code hash that
goes into cache keys.

What is hashed for a function (documented in docs/caching.md):
- its syntax tree with comments, whitespace, docstrings and decorators removed, so reformatting,
  a comment or reordering decorators keeps the hash;
- recursively, the same for every function or class it refers to by global name, by closure or
  as ``module.attr``, when that object is defined in the user's own code (not the standard
  library, not an installed package, not gristmill);
- the repr of simple constants (numbers, strings, bools, None, tuples of those) it reads from
  module globals or closures.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import sys
import sysconfig
import types
from typing import TYPE_CHECKING, Any

from gristmill._hashing import hash_text

if TYPE_CHECKING:
    from pathlib import Path

_SIMPLE_CONSTANTS = (int, float, str, bytes, bool, type(None))


def source_id(obj: Any) -> str:
    """``module:qualname`` that imports ``obj`` back; ``__main__`` is replaced by the module
    name the script would have when imported, so remote workers can import it."""
    module = getattr(obj, "__module__", None) or "__main__"
    if module == "__main__":
        module = main_module_name()
    return f"{module}:{obj.__qualname__}"


@functools.cache
def main_module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name)
    file = getattr(main, "__file__", None)
    if not file:
        return "__main__"
    from pathlib import Path  # not at import: defining steps needs none of this

    path = Path(file).resolve()
    for entry in sys.path:
        root = Path(entry or ".").resolve()
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        return ".".join(relative.with_suffix("").parts)
    return path.stem


def import_source(source: str) -> Any:
    """The object a ``module:qualname`` id names."""
    module_name, _, qualname = source.partition(":")
    if not qualname:
        raise ImportError(f"'{source}' is not of the form 'module:name'")
    if module_name == main_module_name() and "__main__" in sys.modules:
        module: Any = sys.modules["__main__"]
        if not hasattr(module, qualname.split(".")[0]):
            module = importlib.import_module(module_name)
    else:
        module = importlib.import_module(module_name)
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            roots.add(p)
    from pathlib import Path

    return tuple(str(Path(r).resolve()) for r in roots)


def is_user_module(module_name: str | None) -> bool:
    """True for modules of the user's own project (not stdlib, installed packages or gristmill)."""
    if not module_name or module_name == "gristmill" or module_name.startswith("gristmill."):
        return False
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is None or not file:
        return module_name == "__main__"
    return _is_user_file(file)


@functools.lru_cache(maxsize=16384)
def _is_user_file(file: str) -> bool:
    """User code: a file outside the interpreter's library folders that is under the project
    (the working directory, GRISTMILL_PROJECT, the script's folder), or elsewhere but not
    part of an installed distribution (a folder on PYTHONPATH holding packages installed there
    with ``pip install --target`` is library code, though it is not site-packages)."""
    # Cached: a process imports thousands of library modules, each resolved once.
    if file.startswith(_library_roots()):
        return False
    from pathlib import Path

    path = Path(file).resolve()
    if str(path).startswith(_library_roots()):
        return False
    if any(path.is_relative_to(root) for root in _project_roots()):
        return True
    return not _distributed(path)


def _project_roots() -> list[Path]:
    import os
    from pathlib import Path

    roots = [Path.cwd()]
    if os.environ.get("GRISTMILL_PROJECT"):
        roots.append(Path(os.environ["GRISTMILL_PROJECT"]).expanduser())
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file:
        roots.append(Path(main_file).parent)
    return [root.resolve() for root in roots]


def _distributed(path: Path) -> bool:
    """Whether ``path`` belongs to a distribution installed in the ``sys.path`` folder that
    holds it (its top-level name is listed by a ``*.dist-info`` or ``*.egg-info`` there)."""
    from pathlib import Path

    for entry in sys.path:
        folder = Path(entry or ".").resolve()
        if folder == path or not path.is_relative_to(folder):
            continue
        top = path.relative_to(folder).parts[0].removesuffix(".py")
        if top in _distributed_names(str(folder)):
            return True
    return False


@functools.lru_cache(maxsize=256)
def _distributed_names(folder: str) -> frozenset[str]:
    """Top-level module names the distributions installed in ``folder`` provide."""
    from pathlib import Path

    names: set[str] = set()
    try:
        metadata = [p for p in Path(folder).iterdir() if p.suffix in (".dist-info", ".egg-info")]
    except OSError:
        return frozenset()
    for info in metadata:
        try:
            top_level = (info / "top_level.txt").read_text(encoding="utf-8").split()
        except OSError:
            top_level = []
            try:
                record = (info / "RECORD").read_text(encoding="utf-8").splitlines()
            except OSError:
                record = []
            for line in record:
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first and first != ".." and not first.endswith((".dist-info", ".data")):
                    top_level.append(first.removesuffix(".py"))
        names.update(top_level)
    return frozenset(names)


class _Normalizer(ast.NodeTransformer):
    """Drops what does not change behaviour: docstrings, decorators, type comments."""

    def _strip(self, node: Any) -> Any:
        node.decorator_list = []
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    visit_FunctionDef = _strip
    visit_AsyncFunctionDef = _strip
    visit_ClassDef = _strip


def _syntax_tree(obj: Any) -> ast.AST | None:
    try:
        import textwrap

        text = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    normalized: ast.AST = _Normalizer().visit(tree)
    return normalized


def _referenced(tree: ast.AST) -> tuple[set[str], set[tuple[str, str]]]:
    names: set[str] = set()
    attributes: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and isinstance(node.ctx, ast.Load)
        ):
            attributes.add((node.value.id, node.attr))
    return names, attributes


def code_hash(func: Any) -> str:
    """The hash of a function's behaviour-relevant code and the user code it reaches."""
    parts: list[str] = []
    _collect(func, parts, set())
    return hash_text("\n".join(parts))


def _collect(obj: Any, parts: list[str], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    obj = inspect.unwrap(obj) if callable(obj) else obj
    tree = _syntax_tree(obj)
    label = getattr(obj, "__qualname__", repr(type(obj)))
    if tree is None:
        code = getattr(obj, "__code__", None)
        fallback = repr((code.co_code, code.co_consts, code.co_names)) if code else repr(obj)
        parts.append(f"{label}:bytecode:{fallback}")
        return
    parts.append(f"{label}:{ast.dump(tree, annotate_fields=False)}")
    names, attributes = _referenced(tree)
    namespace: dict[str, Any] = dict(getattr(obj, "__globals__", {}) or {})
    if not namespace:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        namespace = vars(module) if module else {}
    code = getattr(obj, "__code__", None)
    if code is not None and obj.__closure__:
        for name, cell in zip(code.co_freevars, obj.__closure__, strict=False):
            try:
                namespace[name] = cell.cell_contents
            except ValueError:  # an empty cell: the name is assigned later
                continue
    for name in sorted(names):
        if name in namespace:
            _visit_value(name, namespace[name], parts, seen)
    for base, attr in sorted(attributes):
        value = namespace.get(base)
        if isinstance(value, types.ModuleType) and is_user_module(value.__name__):
            target = getattr(value, attr, None)
            if target is not None:
                _visit_value(f"{base}.{attr}", target, parts, seen)


def _visit_value(name: str, value: Any, parts: list[str], seen: set[int]) -> None:
    if isinstance(value, _SIMPLE_CONSTANTS) or (
        isinstance(value, tuple) and all(isinstance(v, _SIMPLE_CONSTANTS) for v in value)
    ):
        parts.append(f"const {name}={value!r}")
        return
    wrapped = getattr(value, "__wrapped__", None)  # a Step, or any functools.wraps wrapper
    target = wrapped if wrapped is not None else value
    if isinstance(target, (types.FunctionType, type)) and is_user_module(target.__module__):
        _collect(target, parts, seen)
