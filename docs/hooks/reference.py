"""The docs site's generated pages, built from the code when mkdocs builds (an mkdocs hook).

- The configuration reference: every key of the `Config` dataclass tree, every tower's knobs
  and every distillation method's `Config`, with its type, default, check and meaning.
- The schema reference: every key a schema file may hold, with its default, check and meaning.
- `benchmarks/results/*.md` as pages, listed on the benchmarks page.
- `CHANGELOG.md` as the changelog page.

Defaults come from the dataclasses, meanings from the fields' comments and the classes'
`Attributes:` docstrings, and checks from the code that refuses a value: the config's value
checks, and the messages of the errors the package raises ("X must be ...", "X must be one
of ..."), read from its source. Nothing here restates a default or a range by hand, so the
pages cannot drift from the code; `tests/test_docs.py` checks that they name every key.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import inspect
import io
import os
import re
import sys
import tokenize
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the package imports TensorFlow
# The checkout these pages describe, whatever rocketctr the environment installed. Imported
# here, while this path leads: mkdocs restores sys.path after loading a hook, and the
# package's modules are then found through the package.
sys.path.insert(0, str(ROOT))
import rocketctr  # noqa: E402

sys.path.remove(str(ROOT))
assert Path(rocketctr.__file__).resolve().parent == ROOT / "rocketctr", rocketctr.__file__
PACKAGE = ROOT / "rocketctr"
RESULTS = ROOT / "benchmarks" / "results"
CHANGELOG = ROOT / "CHANGELOG.md"

CONFIG_MARKER = "<!-- rocketctr:config-reference -->"
SCHEMA_MARKER = "<!-- rocketctr:schema-reference -->"
RESULTS_MARKER = "<!-- rocketctr:results-index -->"


@dataclasses.dataclass(frozen=True)
class Key:
    """One row of a reference table."""

    key: str
    type: str
    default: str
    check: str
    meaning: str


# --------------------------------------------------------------------------- the source
@dataclasses.dataclass
class _Module:
    name: str
    tree: ast.Module
    constants: dict[str, Any]  # module-level literal tuples, lists, sets, dict keys
    imports: dict[str, tuple[str, str]]  # local name -> (module, name)


@cache
def _modules() -> dict[str, _Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants, imports = {}, {}
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = _literal(node.value)
                for target in targets:
                    if isinstance(target, ast.Name) and value is not None:
                        constants[target.id] = value
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    imports[alias.asname or alias.name] = (node.module, alias.name)
        modules[name] = _Module(name, tree, constants, imports)
    return modules


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Dict):  # a registry: its keys are the names it knows
        keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
        return tuple(keys) if len(keys) == len(node.keys) else None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, tuple | list | set | frozenset) else None


def _constant(module: _Module, name: str) -> Any:
    if name in module.constants:
        return module.constants[name]
    if name in module.imports:
        source, original = module.imports[name]
        if source in _modules():
            return _constant(_modules()[source], original)
    return None


def _values(values: Any) -> str:
    return ", ".join(f"`{v}`" for v in (sorted(values) if isinstance(values, set) else values))


def _render(
    node: ast.expr, module: _Module, bound: dict[str, str], params: frozenset[str] = frozenset()
) -> str | None:
    """The text of a message string. A part it cannot know reads "*", or "?" when it is a
    parameter of the function raising it (a helper's key, known only at its call sites)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _render(node.left, module, bound, params)
        right = _render(node.right, module, bound, params)
        return None if left is None or right is None else left + right
    if not isinstance(node, ast.JoinedStr):
        return None
    text = ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            text += str(part.value)
            continue
        expr = part.value
        listed = isinstance(expr, ast.Call) and getattr(expr.func, "id", None) in (
            "list", "sorted", "tuple",
        )  # fmt: skip
        if listed and expr.args:
            expr = expr.args[0]
        if isinstance(expr, ast.Name) and expr.id in bound:
            text += bound[expr.id]
        elif isinstance(expr, ast.Name) and _constant(module, expr.id) is not None:
            text += _values(_constant(module, expr.id))
        elif isinstance(expr, ast.Name) and expr.id in params:
            text += "?"
        else:
            text += "*"
    return text


def _raised(
    tree: ast.AST, module: _Module, bound: dict[str, str], params: frozenset[str]
) -> Iterator[tuple[str, str]]:
    """(text, module) of the messages of the errors raised in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            text = _render(node.exc.args[0], module, bound, params)
            if text:
                yield text, module.name


def _messages() -> Iterator[tuple[str, str]]:
    """(text, module) of every error message the package raises, with the arguments of
    helper calls such as `check_positive("kd", "temperature", ...)` filled in."""
    functions = {}
    for module in _modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = (module, node)
    for module in _modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef):
                params = frozenset(a.arg for a in node.args.args + node.args.kwonlyargs)
                yield from _raised(node, module, {}, params)
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in functions):
                continue
            args = []  # the call's leading string arguments
            for arg in node.args:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    break
                args.append(arg.value)
            if args:
                helper_module, helper = functions[node.func.id]
                params = [a.arg for a in helper.args.args]
                bound = dict(zip(params, args, strict=False))
                yield from _raised(helper, helper_module, bound, frozenset(params) - set(bound))


_MUST = re.compile(r"^(?:Config key )?`?([A-Za-z_][\w.*]*)`? (must (?:[^.]|\.\d)*)")


@cache
def _checks() -> list[tuple[str, str]]:
    """(key pattern, check) from every "<key> must ..." message of the package."""
    found = []
    for text, _ in _messages():
        for match in _MUST.finditer(text.split(". Received")[0].strip()):
            key, check = match.group(1), match.group(2).strip().rstrip(":;,")
            if "*" not in check:
                found.append((key, check))
    return found


@cache
def _allowed() -> dict[str, Any]:
    """{field name: allowed values} of each `if x.field not in VALUES: raise ...` check."""
    allowed = {}
    for module in _modules().values():
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
                continue
            test = node.test
            if len(test.ops) != 1 or not isinstance(test.ops[0], ast.NotIn):
                continue
            if not any(isinstance(s, ast.Raise) for s in node.body):
                continue
            if not isinstance(test.left, ast.Attribute):  # a config's field, not a local
                continue
            name, right = test.left.attr, test.comparators[0]
            values = _literal(right)
            if values is None and isinstance(right, ast.Name):
                values = _constant(module, right.id)
            if values is not None and name not in ("name", "format"):
                allowed.setdefault(name, values)
    return allowed


def _checks_of(key: str, stated: bool = False) -> list[str]:
    """The checks the package states for the dotted config key `key`. With `stated` (the
    config's own value check exists), only the allowed values are added to it."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in _allowed():  # the values a check compares with say it best
        return [f"must be one of {_values(_allowed()[leaf])}"]
    out = []
    for pattern, check in _checks():
        named = key == pattern or key.endswith("." + pattern) or fnmatch.fnmatchcase(key, pattern)
        if named and (not stated or "one of" in check):
            out.append(check)
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- comments
@cache
def _field_comments(cls: type) -> dict[str, str]:
    """{field: its comment} of a dataclass: the comment lines above it and the one after it."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    names = {f.name for f in dataclasses.fields(cls)}
    out, above = {}, []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if number in comments and stripped.startswith("#"):
            above.append(comments[number])
            continue
        match = re.match(r"\s+(\w+)\s*:", line)
        if match and match.group(1) in names:
            text = above + ([comments[number]] if number in comments else [])
            out[match.group(1)] = _clean(" ".join(text))
        above = []
    return out


@cache
def _attributes(cls: type) -> dict[str, str]:
    """{name: text} of the `name: text` entries of a class docstring (Google style)."""
    doc = inspect.getdoc(cls) or ""
    out, current = {}, None
    for line in doc.splitlines():
        match = re.match(r"    (\w[\w, ]*): (.*)", line)
        if match:
            current = [n.strip() for n in match.group(1).split(",")]
            for name in current:
                out[name] = match.group(2).strip()
        elif current and line.startswith("        "):
            for name in current:
                out[name] += " " + line.strip()
        else:
            current = None
    return {k: _clean(v) for k, v in out.items()}


def _cell(text: str) -> str:
    """`text` for a table cell: a pipe outside a code span is escaped (inside one, the
    tables extension keeps it)."""
    parts = text.split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _clean(text: str) -> str:
    # Comments may point at README sections that now live on these pages.
    text = re.sub(r"\s*\(README [^)]*\)", "", text)
    text = re.sub(r"\s*See the README[^.]*\.", "", text)
    return text.strip()


# --------------------------------------------------------------------------- config
def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_type_name(a) for a in inner) + " or null"
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return "section"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if value is None:
        return "`null`"
    if value in ("\t", " "):
        return {"\t": "a tab", " ": "a space"}[value]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _stated_check(cls: type, name: str) -> str:
    """The check a config class states for its field `name` (`value_check`), with a list of
    choices shown as `a`, `b`."""
    from rocketctr.config.core import value_check

    check = value_check(cls, name)
    if not check:
        return ""
    return re.sub(r"\[('[^\]]*')\]", lambda m: _values(ast.literal_eval(f"[{m[1]}]")), check[1])


def _config_check(cls: type, name: str, key: str) -> str:
    stated = _stated_check(cls, name)
    checks = ([stated] if stated else []) + _checks_of(key, stated=bool(stated))
    if name == "name":
        from rocketctr.config import core
        from rocketctr.towers import tower_names

        if issubclass(cls, core.TowerConfig):
            checks.append(f"a tower: one of {_values(tower_names())}")
    return "; ".join(dict.fromkeys(checks))


def config_keys() -> list[Key]:
    """Every key of the `Config` dataclass tree, depth first, sections before their keys. A
    section holding a value walks that value's class (a tower's own `Config`)."""
    from rocketctr.config import Config

    return list(_walk(Config, "", Config()))


def _walk(
    cls: type, prefix: str, instance: Any, skip: frozenset[str] = frozenset()
) -> Iterator[Key]:
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        value = getattr(instance, f.name) if instance is not None else _default(f)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        optional = origin in (typing.Union, types.UnionType)
        inner = next((a for a in args if a is not type(None)), None) if optional else tp
        meaning = comments.get(f.name, "") or _attributes(cls).get(f.name, "")
        if dataclasses.is_dataclass(inner):
            if optional:  # a section that may be null: its keys apply when it is set
                yield Key(key, "section or null", _show(value), "", meaning)
            section = type(value) if dataclasses.is_dataclass(value) else inner
            yield from _walk(section, key, value if dataclasses.is_dataclass(value) else None)
            continue
        if origin is dict and dataclasses.is_dataclass(args[1]):
            yield Key(key, "mapping of name to section", _show(value), "", meaning)
            yield from _walk(args[1], f"{key}.<name>", None)
            continue
        check = _config_check(cls, f.name, key)
        if origin is dict:
            check = check or "each entry is checked by what it names"
        yield Key(key, _type_name(tp), _show(value), check, meaning)


def _doc_summary(obj: Any) -> str:
    """The first paragraph of `obj`'s own docstring (not one it inherits, nor the signature
    a dataclass without one gets)."""
    doc = inspect.cleandoc(obj.__doc__ or "")
    if isinstance(obj, type) and doc.startswith(obj.__name__ + "("):
        return ""
    return _clean(doc.split("\n\n")[0].replace("\n", " "))


def _table(rows: list[Key]) -> str:
    head = "| key | type | default | check | meaning |\n|---|---|---|---|---|\n"
    lines = [
        f"| `{r.key}` | {r.type} | {_cell(r.default)} | {_cell(r.check) or '—'} "
        f"| {_cell(r.meaning) or '—'} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def tower_keys() -> dict[str, list[Key]]:
    """{tower name: its knobs}: the fields of its own `Config`, or, where towers share one
    `TowerConfig`, the fields it declares it `uses`."""
    from rocketctr.config import core
    from rocketctr.towers import base, tower_names

    out = {}
    for name in tower_names():
        cls = base._REGISTRY[name]
        config_class = getattr(cls, "Config", None)
        if not dataclasses.is_dataclass(config_class):
            config_class = core.TowerConfig
        fields = {f.name for f in dataclasses.fields(config_class)} - {"name"}
        uses = getattr(cls, "uses", None)
        if config_class is core.TowerConfig and uses is not None:
            fields &= set(uses)
        skip = frozenset(f.name for f in dataclasses.fields(config_class)) - fields
        out[name] = list(_walk(config_class, "<tower>", None, skip=skip))
    return out


def method_keys() -> dict[str, list[Key]]:
    """{method name: its knobs} of every registered distillation method."""
    import rocketctr.distill  # noqa: F401  (registers the methods)
    from rocketctr.distill import base

    return {
        name: list(_walk(base._REGISTRY[name].Config, f"distill.methods.{name}", None))
        for name in base.method_names()
    }


def _hidden_names(name: str, cls: type) -> tuple[str, ...]:
    """What a tower offers to feature transfer; some towers decide it from their config."""
    if not isinstance(inspect.getattr_static(cls, "hidden_names"), property):
        return tuple(cls.hidden_names)
    from rocketctr.config import core

    config_class = getattr(cls, "Config", None)
    if not dataclasses.is_dataclass(config_class):
        config_class = core.TowerConfig
    return tuple(cls(config_class(name=name, hidden_units=(8,))).hidden_names)


def config_reference() -> str:
    """The configuration reference, in markdown."""
    import rocketctr.distill  # noqa: F401  (registers the methods)
    from rocketctr.config import core
    from rocketctr.distill import base as methods
    from rocketctr.towers import base as towers

    rows = config_keys()
    sections: dict[str, list[Key]] = {"": [r for r in rows if "." not in r.key]}
    for r in rows:
        if "." in r.key:
            sections.setdefault(r.key.split(".")[0], []).append(r)
    classes = {"model": core.ModelConfig, "distill": core.DistillConfig,
               "train": core.TrainConfig, "export": core.ExportConfig}  # fmt: skip
    out = []
    for section, section_rows in sections.items():
        out.append(f"## `{section}`\n" if section else "## Top level\n")
        if section in classes and _doc_summary(classes[section]):
            out.append(_doc_summary(classes[section]) + "\n")
        out.append(_table(section_rows))

    out.append("## Towers\n")
    out.append(
        "`model.booster`, `model.light` and each net of `model.lights` name a tower "
        "(`name`) and set its knobs, the `<tower>` keys below; a knob the named tower does "
        "not read is refused. The hidden representations are what the tower offers to "
        "`distill.methods.hidden` (with `hidden_units` set).\n"
    )
    for name, knobs in tower_keys().items():
        cls = towers._REGISTRY[name]
        hidden = ", ".join(f"`{h}`" for h in _hidden_names(name, cls)) or "none"
        out.append(f"### `{name}`\n")
        out.append(f"{_doc_summary(cls)} Hidden representations: {hidden}.\n")
        out.append(_table(knobs) if knobs else "It has no knobs.\n")

    out.append("## Distillation methods\n")
    out.append(
        "`distill.methods` maps method names to their knobs; each method's knobs are its own "
        "`Config` dataclass, and a knob it does not have is refused.\n"
    )
    for name, knobs in method_keys().items():
        cls = methods._REGISTRY[name]
        out.append(f"### `{name}`\n")
        summary = _doc_summary(cls) or _doc_summary(inspect.getmodule(cls))
        if summary:
            out.append(summary + "\n")
        out.append(_table(knobs))
    return "\n".join(out)


# --------------------------------------------------------------------------- schema
def _schema_sections() -> list[tuple[str, str, type | None, str]]:
    """(path, key set in features/schema.py, its dataclass, the function that reads it)."""
    from rocketctr.features import schema

    return [
        ("", "_SCHEMA_KEYS", schema.Schema, "parse_schema"),
        ("dense[]", "_DENSE_KEYS", schema.DenseFeature, "parse_schema"),
        ("categorical[]", "_CATEGORICAL_KEYS", schema.CategoricalFeature, "parse_schema"),
        ("categorical[].multi_valued", "_MULTI_VALUED_KEYS", schema.MultiValued, "_multi_valued"),
        ("categorical[].sequence", "_SEQUENCE_KEYS", None, "_sequence"),
        ("categorical[].vocabulary", "_VOCABULARY_KEYS", schema.Vocabulary, "_vocabulary"),
    ]


# A schema key whose meaning is documented under another name in the dataclasses.
_SCHEMA_ALIASES = {"sequence": "sequence_of", "item_feature": "sequence_of"}


@cache
def _schema_module() -> _Module:
    return _modules()["rocketctr.features.schema"]


def _schema_failures() -> list[tuple[str, str]]:
    """(key pattern, message) of every `fail(key, message)` in features/schema.py. A key
    built inside the entry's loop reads "*.<key>"; one built from a loop over literal key
    names (`for size_key in ("hash_buckets", "num_ids")`) gives a pattern per name."""
    module = _schema_module()
    loops = {}  # fail call -> [{loop variable: value}]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            values = _literal(node.iter)
            if values is not None:
                for call in ast.walk(node):
                    loops[id(call)] = [{node.target.id: str(v)} for v in values]
    out = []
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "fail"):
            continue
        if len(node.args) != 2:
            continue
        for bound in loops.get(id(node), [{}]):
            key, message = (_render(a, module, bound) for a in node.args)
            if key and message and "*" not in key.removeprefix("*."):
                message = message.split(". Received")[0].strip().rstrip(".")
                out.append((key, message.replace("*", "…")))
    return out


def _schema_checks(path: str, name: str) -> list[str]:
    """The messages of the failures that name key `name` of section `path`."""
    full = f"{path.replace('[]', '')}.{name}" if path else name
    out = []
    for key, message in _schema_failures():
        if key.startswith("*."):
            if path and full.endswith("." + key[2:]):
                out.append(message)
        elif not path and key == name:
            out.append(message)
    return list(dict.fromkeys(out))


def _get_defaults(function: str) -> dict[str, str]:
    """{key: its default, shown} of the keys a function of the schema module reads with
    `.get("key", default)` or `.get("key") or default` (`null` without a default)."""
    out = {}
    for node in ast.walk(_schema_module().tree):
        if not (isinstance(node, ast.FunctionDef) and node.name == function):
            continue
        fallbacks = {}  # .get call -> the value after `or`
        for inner in ast.walk(node):
            if isinstance(inner, ast.BoolOp) and isinstance(inner.op, ast.Or):
                fallbacks[id(inner.values[0])] = inner.values[1]
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "get"):
                continue
            if not (call.args and isinstance(call.args[0], ast.Constant)):
                continue
            default = call.args[1] if len(call.args) == 2 else fallbacks.get(id(call))
            out.setdefault(call.args[0].value, _show_node(default))
    return out


def _show_node(node: ast.expr | None) -> str:
    """A default as written in the source: a literal, or `{a: x, b: y}.get(name, z)`."""
    if node is None:
        return "`null`"
    try:
        return _show(ast.literal_eval(node))
    except ValueError:
        pass
    by = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    if by and isinstance(node.func.value, ast.Dict) and len(node.args) == 2:
        cases = ast.literal_eval(node.func.value)
        choices = ", ".join(f"{k}: {_show(v)}" for k, v in cases.items())
        return f"by format: {choices}, else {_show(ast.literal_eval(node.args[1]))}"
    return f"`{ast.unparse(node)}`"


def schema_keys() -> list[Key]:
    """Every key a schema file may hold."""
    from rocketctr.features import schema

    rows = []
    categorical_doc = _attributes(schema.CategoricalFeature)
    for path, key_set, cls, function in _schema_sections():
        fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
        hints = typing.get_type_hints(cls) if cls else {}
        docs = _attributes(cls) if cls else {}
        gets = _get_defaults(function)
        for name in sorted(getattr(schema, key_set)):
            key = f"{path}.{name}" if path else name
            checks = _schema_checks(path, name)
            if "is required" in checks:
                default = "required"
            elif name in gets:
                default = gets[name]
            elif name in fields:
                default = _show(_default(fields[name]))
            else:
                default = "—"
            meaning = (
                docs.get(name)
                or categorical_doc.get(_SCHEMA_ALIASES.get(name, ""))
                or _attributes(schema.MultiValued).get(name)
                or _list_of(hints.get(name))
            )
            checks = [c for c in checks if c != "is required"]
            rows.append(Key(key, "", default, "; ".join(checks), meaning or ""))
    return rows


def _list_of(tp: Any) -> str:
    """'A list of: <summary>' for a field holding a tuple of dataclasses."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and args and dataclasses.is_dataclass(args[0]):
        return "A list of entries, each: " + _doc_summary(args[0])
    return ""


def schema_reference() -> str:
    """The schema reference, in markdown."""
    rows = schema_keys()
    out = []
    titles = {
        "": "Top level",
        "dense[]": "`dense` entries",
        "categorical[]": "`categorical` entries",
    }
    for path, *_ in _schema_sections():
        out.append(f"## {titles.get(path, f'`{path}`')}\n")
        section = [r for r in rows if (r.key.rsplit(".", 1)[0] if "." in r.key else "") == path]
        out.append("| key | default | check | meaning |\n|---|---|---|---|")
        for r in section:
            out.append(
                f"| `{r.key}` | {_cell(r.default)} | {_cell(r.check) or '—'} "
                f"| {_cell(r.meaning) or '—'} |"
            )
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- results
def results_pages() -> dict[str, str]:
    """{page path: markdown} of every benchmark result file."""
    return {
        f"benchmarks/results/{p.name}": p.read_text(encoding="utf-8")
        for p in sorted(RESULTS.glob("*.md"))
    }


def results_index() -> str:
    lines = ["| result file | what it measured |", "|---|---|"]
    for path, text in results_pages().items():
        title = next(
            (ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), ""
        )
        name = path.rsplit("/", 1)[1]
        lines.append(f"| [{name}](results/{name}) | {_clean(title) or '—'} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- mkdocs hooks
def on_files(files, config):
    from mkdocs.structure.files import File, InclusionLevel

    # The result files are linked from the benchmarks page, not listed in the navigation.
    for path, content in results_pages().items():
        files.append(
            File.generated(config, path, content=content, inclusion=InclusionLevel.NOT_IN_NAV)
        )
    changelog = CHANGELOG.read_text(encoding="utf-8").replace("](docs/", "](")
    files.append(File.generated(config, "changelog.md", content=changelog))
    return files


def on_page_markdown(markdown, page, config, files):
    replacements = {
        CONFIG_MARKER: config_reference,
        SCHEMA_MARKER: schema_reference,
        RESULTS_MARKER: results_index,
    }
    for marker, build in replacements.items():
        if marker in markdown:
            markdown = markdown.replace(marker, build())
    return markdown
