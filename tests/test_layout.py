"""The package's layout: folders without import cycles between them, and the module paths of
earlier releases still importing (with a warning naming the new path)."""

import ast
import importlib
import sys
from pathlib import Path

import pytest

import rocketctr

PACKAGE = Path(rocketctr.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """The folder (or top-level module) a module belongs to: rocketctr.<part>."""
    return ".".join(module.split(".")[:2])


def _imported_at_load(path: Path) -> set[str]:
    """The rocketctr modules a module imports when it loads (not inside functions)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        for n in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(n, ast.Import):
                names |= {a.name for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                names |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
    return {n for n in names if n.startswith("rocketctr.")}


def _part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        part = _part(_module_name(path))
        targets = {_part(n) for n in _imported_at_load(path)}
        graph.setdefault(part, set()).update(targets - {part})
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_the_package_parts():
    graph = _part_graph()
    assert {"rocketctr.model", "rocketctr.distill", "rocketctr.training"} <= set(graph)
    assert "rocketctr.model" in graph["rocketctr.training"]  # the graph sees real imports
    assert _cycle(graph) is None


def test_top_level_holds_only_what_belongs_to_no_part():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "cli.py", "files.py"]


@pytest.mark.parametrize("old", sorted(rocketctr.MOVED_MODULES))
def test_an_old_module_path_imports_the_moved_module(old):
    new = rocketctr.MOVED_MODULES[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_the_old_tfx_and_python_entry_points_still_resolve():
    sys.modules.pop("rocketctr.tfx_trainer", None)
    sys.modules.pop("rocketctr.train", None)
    with pytest.warns(DeprecationWarning):
        from rocketctr.tfx_trainer import preprocessing_fn, run_fn
    with pytest.warns(DeprecationWarning):
        from rocketctr.train import train
    from rocketctr.serving import export_from_model_dir
    from rocketctr.tfx.trainer import run_fn as new_run_fn
    from rocketctr.tfx.transform import preprocessing_fn as new_preprocessing_fn
    from rocketctr.training.train import train as new_train

    assert (run_fn, train, preprocessing_fn) == (new_run_fn, new_train, new_preprocessing_fn)
    assert callable(export_from_model_dir)
