"""Keys, types and class paths of a config checked against the classes' signatures, read from
their source files with :mod:`ast` instead of importing them (no torch, no Lightning).

The CLI's pre-flight runs it so that an unknown key, a wrong type or a class path that does not
exist is reported in a fraction of a second instead of after the ~5 s of imports jsonargparse
needs to read the same signatures. It is lenient by design: whatever it cannot decide for certain
(a compiled module, ``**kwargs``, a type it does not know, a union with such a member) is
accepted, and jsonargparse checks everything again when LightningCLI parses the config. So it
can miss an error but must never reject a config jsonargparse accepts.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import importlib.util
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib.machinery import ModuleSpec, PathFinder

from rlad_pl.errors import ConfigError

#: keys of a class mapping that are not constructor arguments
SPEC_KEYS = ("class_path", "init_args", "dict_kwargs", "__path__")
_TYPING_MODULES = ("typing", "typing_extensions", "collections.abc", "builtins")
# standard-library types taken by name (``Path``, ``timedelta``), never read as classes
_OPAQUE_MODULES = (*_TYPING_MODULES, "pathlib", "os", "datetime", "enum", "re", "types",
                   "numbers", "collections")
_LISTS = {"list", "List", "Sequence", "MutableSequence"}
_DICTS = {"dict", "Dict", "Mapping", "MutableMapping"}
_PATHS = {"Path", "PathLike", "PurePath"}


class _Missing(Exception):
    """A module or a name in a module that certainly does not exist (the message says which)."""


@dataclass(eq=False)  # hashed by identity (cached signatures)
class _Module:
    """A parsed source module: its top-level names (definitions, assignments, imports)."""

    name: str
    is_package: bool
    names: dict[str, object] = field(default_factory=dict)
    open: bool = False  # a module __getattr__ or a star import: names may exist unseen


@dataclass(frozen=True)
class _Class:
    module: _Module
    node: ast.ClassDef

    @property
    def path(self) -> str:
        return f"{self.module.name}.{self.node.name}"


@dataclass
class _Signature:
    params: dict[str, tuple[ast.expr | None, ast.expr | None, _Module]]  # annotation, default
    open: bool  # **kwargs or an unreadable base class: unknown keys may be accepted


# ----------------------------------------------------------------------------- sources
@cache
def _spec(name: str) -> ModuleSpec | None:
    """The module's spec found without executing any package; ``None`` when it cannot be told
    without importing; :class:`_Missing` when it does not exist."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise _Missing(f"{name!r} is not a module name")
    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    parent, _, _ = name.rpartition(".")
    if not parent:
        try:  # top level: runs the finders, executes nothing
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
    else:
        parent_spec = _spec(parent)
        if parent_spec is None:
            return None
        if parent_spec.submodule_search_locations is None:
            raise _Missing(f"no module named {name!r} ({parent} is not a package)")
        spec = PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))
    if spec is None:
        raise _Missing(f"no module named {name!r}")
    return spec


@cache
def _module(name: str) -> _Module | None:
    spec = _spec(name)
    origin = getattr(spec, "origin", None)
    if spec is None or not origin or not origin.endswith(".py"):
        return None
    try:
        with open(origin, encoding="utf-8") as file:
            tree = ast.parse(file.read(), origin)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    module = _Module(name, spec.submodule_search_locations is not None)
    _collect(module, tree.body)
    return module


def _collect(module: _Module, body: list[ast.stmt]) -> None:
    """Top-level names, including those bound in ``if`` / ``try`` / ``with`` blocks."""
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            module.names[node.name] = node
            if node.name == "__getattr__":
                module.open = True
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    module.names[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            module.names[node.target.id] = node.value
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node.module, node.level)
            for alias in node.names:
                if alias.name == "*":
                    module.open = True
                else:
                    module.names[alias.asname or alias.name] = ("from", source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module.names[alias.asname] = ("module", alias.name)
                else:
                    top = alias.name.partition(".")[0]
                    module.names[top] = ("module", top)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody"):
                _collect(module, getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                _collect(module, handler.body)


def _absolute(module: _Module, name: str | None, level: int) -> str:
    if not level:
        return name or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


# ----------------------------------------------------------------------------- names
def _lookup(module: _Module, name: str, depth: int = 0):
    """What ``module.name`` is: a ``_Class``, ``("typing", name)``, ``("module", name)``,
    ``("expr", module, node)`` for an assignment, or ``None`` (unknown). :class:`_Missing`
    when the module certainly has no such name."""
    if depth > 20:
        return None
    if name not in module.names:
        if module.name in _OPAQUE_MODULES:
            return ("typing", name)
        if module.is_package:
            try:
                if _spec(f"{module.name}.{name}") is not None:
                    return ("module", f"{module.name}.{name}")
            except _Missing:
                pass
        if module.open:
            return None
        raise _Missing(f"{module.name} has no {name!r}")
    entry = module.names[name]
    if isinstance(entry, ast.ClassDef):
        return _Class(module, entry)
    if isinstance(entry, tuple) and entry[0] == "module":
        return entry
    if isinstance(entry, tuple):  # from source import name
        _, source, attr = entry
        if source in _OPAQUE_MODULES or source.partition(".")[0] in _OPAQUE_MODULES:
            return ("typing", attr)
        try:
            target = _module(source)
        except _Missing:
            return None  # an import that fails at run time is not this config's problem
        if target is None:
            return None
        try:
            return _lookup(target, attr, depth + 1)
        except _Missing:
            return None
    if isinstance(entry, ast.expr):
        return ("expr", module, entry)
    return None


def _resolve(module: _Module, node: ast.expr, depth: int = 0):
    """An annotation's (or base class's) name resolved in ``module``; ``None`` when unknown."""
    if depth > 20:
        return None
    try:
        if isinstance(node, ast.Name):
            if node.id not in module.names and hasattr(builtins, node.id):
                return ("typing", node.id)
            found = _lookup(module, node.id)
        elif isinstance(node, ast.Attribute):
            owner = _resolve(module, node.value, depth + 1)
            if not (isinstance(owner, tuple) and owner[0] == "module"):
                return None
            if owner[1] in _OPAQUE_MODULES:
                return ("typing", node.attr)
            target = _module(owner[1])
            found = None if target is None else _lookup(target, node.attr)
        else:
            return None
    except _Missing:
        return None
    if isinstance(found, tuple) and found[0] == "expr":
        _, where, expr = found
        if isinstance(expr, ast.Name | ast.Attribute):  # Alias = OtherName
            return _resolve(where, expr, depth + 1)
    return found


def find_class(class_path: str) -> _Class | None:
    """The class at ``class_path`` (``pkg.module.Name``) read from source; ``None`` when it
    cannot be told without importing. Raises :class:`_Missing` when it certainly is not there."""
    module_name, _, name = class_path.rpartition(".")
    module = _module(module_name)
    if module is None:
        return None
    found = _lookup(module, name)
    if isinstance(found, tuple) and found[0] == "expr":
        found = _resolve(found[1], found[2])
    if isinstance(found, tuple) and found[0] == "module":
        raise _Missing(f"{class_path} is a module, not a class")
    return found if isinstance(found, _Class) else None


def _classes_in(module_name: str) -> list[str]:
    module = _module(module_name)
    names = []
    for name in sorted(module.names if module else ()):
        try:
            found = _lookup(module, name)
        except _Missing:
            continue
        if isinstance(found, _Class) and not name.startswith("_"):
            names.append(name)
    return names


# ----------------------------------------------------------------------------- signatures
def _is_dataclass(cls: _Class) -> bool:
    for decorator in cls.node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name | ast.Attribute) and ast.unparse(target).endswith(
                "dataclass"):
            return True
    return False


def _bases(cls: _Class) -> list[_Class | None]:
    out = []
    for base in cls.node.bases:
        found = _resolve(cls.module, base)
        if isinstance(found, tuple) and found[0] == "typing" and found[1] == "object":
            continue
        out.append(found if isinstance(found, _Class) else None)
    return out


@cache
def signature(cls: _Class, depth: int = 0) -> _Signature:
    """Constructor parameters as jsonargparse sees them: ``__init__``'s (inherited when the
    class has none), or a dataclass's fields."""
    if depth > 20:
        return _Signature({}, True)
    for item in cls.node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            args = item.args
            positional = args.args[1:]  # self
            defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            params = {a.arg: (a.annotation, d, cls.module)
                      for a, d in zip(positional, defaults, strict=True)}
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                params[a.arg] = (a.annotation, d, cls.module)
            return _Signature(params, args.kwarg is not None or args.vararg is not None)
    if cls.node.keywords or (cls.node.decorator_list and not _is_dataclass(cls)):
        return _Signature({}, True)  # a metaclass or decorator (attrs, ...) may make __init__
    params: dict = {}
    bases = _bases(cls)
    if any(base is None for base in bases):
        return _Signature({}, True)
    open_ = False
    for base in reversed(bases):  # dataclass fields: bases first
        inherited = signature(base, depth + 1)
        params.update(inherited.params)
        open_ = open_ or inherited.open
    if _is_dataclass(cls):
        for item in cls.node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) \
                    and "ClassVar" not in ast.unparse(item.annotation) \
                    and not _no_init_field(item.value):
                params[item.target.id] = (item.annotation, _field_default(item.value),
                                          cls.module)
    return _Signature(params, open_)


def _no_init_field(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Call) and any(
        k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False
        for k in value.keywords)


def _field_default(value: ast.expr | None) -> ast.expr | None:
    if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("field"):
        return next((k.value for k in value.keywords if k.arg == "default"), None)
    return value


def defaults(cls: _Class) -> dict:
    """Parameter defaults that are literals (a dataclass default such as ``Settings(x=1)``
    becomes the mapping of its fields); others are left out."""
    out = {}
    for name, (_, default, module) in signature(cls).params.items():
        value = _default_value(default, module)
        if value is not UNREAD:
            out[name] = value
    return out


#: what a default or attribute is when it cannot be read from source
UNREAD = object()


def _default_value(node: ast.expr | None, module: _Module):
    if node is None:
        return UNREAD
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Call) and not node.args:
        found = _resolve(module, node.func)
        if isinstance(found, _Class) and _is_dataclass(found):
            values = defaults(found)
            for keyword in node.keywords:
                value = _default_value(keyword.value, module)
                if keyword.arg is None or value is UNREAD:
                    return UNREAD
                values[keyword.arg] = value
            return values
    return UNREAD


# ----------------------------------------------------------------------------- checking
def check_class(key: str, class_path: str, args: dict, skip: frozenset[str] = frozenset()) -> None:
    """Raise :class:`ConfigError` when ``class_path`` does not exist or ``args`` has a key its
    constructor does not take or a value of the wrong type. ``skip``: dotted keys (below
    ``key``) whose values are not known exactly here."""
    cls = _find(key, class_path)
    if cls is not None:
        _check_args(cls, args, key, skip)


def _find(key: str, class_path: str) -> _Class | None:
    if "." not in class_path or not all(p.isidentifier() for p in class_path.split(".")):
        return None  # a short name (jsonargparse resolves it), a config file, ...
    try:
        return find_class(class_path)
    except _Missing as missing:
        module_name = class_path.rpartition(".")[0]
        try:
            known = _classes_in(module_name)
        except _Missing:
            known = []
        hint = f"; classes there: {', '.join(known)}" if known else ""
        raise ConfigError(f"{key}={class_path!r}: {missing}{hint}") from None


def _check_args(cls: _Class, args: dict, key: str, skip: frozenset[str]) -> None:
    sig = signature(cls)
    for name, value in args.items():
        here = f"{key}.{name}"
        if here in skip:
            continue
        if name not in sig.params:
            if not sig.open:
                raise ConfigError(_not_accepted(here, value, cls, sig))
            continue
        annotation, _, module = sig.params[name]
        if annotation is not None:
            problem = _type_problem(value, annotation, module, here, skip)
            if problem:
                raise ConfigError(problem)


def _not_accepted(key: str, value, cls: _Class, sig: _Signature) -> str:
    name = key.rpartition(".")[2]
    close = difflib.get_close_matches(name, list(sig.params), n=3)
    allowed = (f"did you mean {' or '.join(close)}?" if close
               else f"it takes {', '.join(sig.params) or 'no arguments'}")
    return (f"{key}={value!r}: not accepted by {cls.path}; {allowed} (`rlad-pl fit --help` and "
            "--print_config list the keys with their types)")


def _type_problem(value, annotation: ast.expr, module: _Module, key: str,
                  skip: frozenset[str]) -> str | None:
    """A one-line problem when ``value`` certainly does not fit ``annotation``, else ``None``."""
    if isinstance(annotation, ast.Constant):
        if isinstance(annotation.value, str):  # a quoted annotation
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        elif annotation.value is None:
            return None if value is None else f"{key}={value!r}: must be null"
        else:
            return None
    members = _union_members(annotation, module)
    if members is not None:
        problems = []
        for member in members:
            problem = _type_problem(value, member, module, key, skip)
            if problem is None:
                return None
            problems.append(problem)
        nested = [p for p in problems if not p.startswith(f"{key}=")]
        return nested[0] if nested else f"{key}={value!r}: expected {_describe(annotation)}"
    head, args = annotation, []
    if isinstance(annotation, ast.Subscript):
        head = annotation.value
        inner = annotation.slice
        args = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
    found = _resolve(module, head)
    if isinstance(found, tuple) and found[0] == "expr":  # a type alias: check its value
        return _type_problem(value, found[2], found[1], key, skip) if not args else None
    if isinstance(found, _Class):
        return _class_value_problem(value, found, key, skip)
    if not (isinstance(found, tuple) and found[0] == "typing"):
        return None
    name = found[1]
    bad = f"{key}={value!r}: expected {_describe(annotation)}"
    if name == "Literal":
        options = []
        for arg in args:
            try:
                options.append(ast.literal_eval(arg))
            except ValueError:
                return None
        if value in options or any(str(option) == str(value) for option in options):
            return None
        return f"{key}={value!r}: must be one of {', '.join(repr(o) for o in options)}"
    if name == "Annotated" and args:
        return _type_problem(value, args[0], module, key, skip)
    if name in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return bad
        if isinstance(value, float) and name == "int":
            return None if value.is_integer() else bad
        try:
            (int if name == "int" and isinstance(value, str) else float)(value)
        except ValueError:
            return bad
        return None
    if name == "bool":
        return None if isinstance(value, bool) or value in (0, 1) else bad
    if name == "str":
        return bad if isinstance(value, dict | list) else None
    if name in _PATHS:
        return None if isinstance(value, str) else bad
    if name in _LISTS or name == "tuple" or name == "Tuple":
        if not isinstance(value, list | tuple):
            return bad
        if name in ("tuple", "Tuple") and args and not any(
                isinstance(a, ast.Constant) and a.value is Ellipsis for a in args):
            if len(value) != len(args):
                return bad
            pairs = list(zip(value, args, strict=True))
        else:
            pairs = [(item, args[0]) for item in value] if args else []
        for i, (item, item_type) in enumerate(pairs):
            if f"{key}.{i}" in skip:
                continue
            problem = _type_problem(item, item_type, module, f"{key}[{i}]", skip)
            if problem:
                return problem
        return None
    if name in _DICTS:
        if not isinstance(value, dict):
            return bad
        if len(args) == 2:
            for item_key, item in value.items():
                problem = _type_problem(item, args[1], module, f"{key}.{item_key}", skip)
                if problem:
                    return problem
        return None
    return None  # Any, object, Callable, Iterable, type variables, ...


def _union_members(annotation: ast.expr, module: _Module) -> list[ast.expr] | None:
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        left = _union_members(annotation.left, module) or [annotation.left]
        right = _union_members(annotation.right, module) or [annotation.right]
        return left + right
    if isinstance(annotation, ast.Subscript):
        found = _resolve(module, annotation.value)
        if found in (("typing", "Union"), ("typing", "Optional")):
            inner = annotation.slice
            members = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
            if found[1] == "Optional":
                members.append(ast.Constant(None))
            return members
    return None


def _class_value_problem(value, cls: _Class, key: str, skip: frozenset[str]) -> str | None:
    """A value for a class-typed parameter: a dataclass takes a mapping of its fields; any
    other class a ``class_path`` (string or mapping with ``init_args``)."""
    if value is None:
        return None  # jsonargparse's handling of null differs per case: leave it
    try:
        if _is_dataclass(cls) and not (isinstance(value, dict) and "class_path" in value):
            if not isinstance(value, dict):
                fields = ", ".join(signature(cls).params)
                return f"{key}={value!r}: expected a mapping of {cls.path} fields ({fields})"
            _check_args(cls, value, key, skip)
            return None
        if isinstance(value, str):
            _find(key, value)
        elif isinstance(value, dict):
            if isinstance(value.get("class_path"), str):
                check_class_spec(key, value, skip)
        else:
            return f"{key}={value!r}: expected a class_path ({cls.path} or a subclass)"
    except ConfigError as err:
        return str(err)
    return None


def check_class_spec(key: str, spec: dict, skip: frozenset[str] = frozenset()) -> None:
    """A ``{class_path, init_args}`` mapping: the class exists and takes these arguments (keys
    beside ``class_path`` count as ``init_args``, as jsonargparse reads them)."""
    class_path = spec.get("class_path")
    if not isinstance(class_path, str) or f"{key}.class_path" in skip:
        return
    args = spec.get("init_args")
    args = dict(args) if isinstance(args, dict) else {}
    args.update({k: v for k, v in spec.items() if k not in SPEC_KEYS})
    cls = _find(f"{key}.class_path", class_path)
    if cls is not None:
        _check_args(cls, args, f"{key}.init_args", skip)


def _describe(annotation: ast.expr) -> str:
    return ast.unparse(annotation).replace("NoneType", "None")


def defining_path(class_path: str) -> str | None:
    """Where ``class_path`` is defined (``rlad_pl.objectives.TRRD`` ->
    ``rlad_pl.objectives.trrd.TRRD``), followed through re-exports; ``None`` when unknown."""
    try:
        cls = find_class(class_path)
    except _Missing:
        return None
    return cls.path if cls is not None else None


def class_defaults(class_path: str) -> dict:
    """Literal defaults of ``class_path``'s constructor (empty when it cannot be read)."""
    try:
        cls = find_class(class_path)
    except _Missing:
        return {}
    return defaults(cls) if cls is not None else {}


def method_parameters(class_path: str, method: str) -> set[str] | None:
    """Parameter names of ``class_path.method`` read from source (``None``: unknown)."""
    try:
        cls = find_class(class_path)
    except _Missing:
        return None
    if cls is None:
        return None
    for item in cls.node.body:
        if isinstance(item, ast.FunctionDef) and item.name == method:
            args = item.args
            if args.kwarg is not None:
                return None
            return {a.arg for a in args.args[1:] + args.kwonlyargs}
    return None


def coerce(class_path: str, args: dict) -> dict:
    """``args`` with numbers converted as jsonargparse converts them for float parameters
    (``0`` -> ``0.0``, ``'1e-4'`` -> ``1e-4``), so that messages and checks see the same value."""
    try:
        cls = find_class(class_path)
    except _Missing:
        return dict(args)
    params = signature(cls).params if cls is not None else {}
    out = {}
    for name, value in args.items():
        annotation = params.get(name, (None,))[0]
        text = ast.unparse(annotation) if annotation is not None else ""
        if "float" in text and "int" not in text and not isinstance(value, bool) \
                and isinstance(value, int | str):
            try:
                value = float(value)
            except ValueError:
                pass
        out[name] = value
    return out


def class_attribute(class_path: str, name: str):
    """A class attribute set to a literal in the class body or a base's (``needs_teacher =
    True``), read from source; :data:`UNREAD` when it is computed (a property) or unknown."""
    try:
        cls = find_class(class_path)
    except _Missing:
        return UNREAD
    return _class_attribute(cls, name, 0) if cls is not None else UNREAD


def _class_attribute(cls: _Class, name: str, depth: int):
    if depth > 20:
        return UNREAD
    for item in cls.node.body:
        targets = (item.targets if isinstance(item, ast.Assign)
                   else [item.target] if isinstance(item, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return _default_value(item.value, cls.module)
        if isinstance(item, ast.FunctionDef) and item.name == name:
            return UNREAD
    for base in _bases(cls):
        if base is None:
            return UNREAD
        value = _class_attribute(base, name, depth + 1)
        if value is not UNREAD:
            return value
    return UNREAD
