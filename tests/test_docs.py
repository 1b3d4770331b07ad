"""The docs: a short README that still opens with the two commands, and a generated
configuration and schema reference that names every key the code accepts."""

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

from rocketctr.config import Config
from rocketctr.features.schema import parse_schema

ROOT = Path(__file__).resolve().parents[1]
DEMO = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
    "rocketctr train --model_dir runs/demo"
)
TESTS = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[test]" && pytest -q -n 2'
)


@pytest.fixture(scope="module")
def reference():
    name = "rocketctr_docs_reference"
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs/hooks/reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, len(lines)
    commands = [line.strip() for line in lines[:11] if line.startswith("    ")]
    assert commands == [DEMO, TESTS]
    # CI runs the README's test command as it is written there.
    assert TESTS in (ROOT / ".ci/run").read_text(encoding="utf-8")


def _leaf_keys(value, prefix=""):
    """The dotted keys of a config value's leaves (an empty mapping or a null is a leaf)."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _leaf_keys(getattr(value, f.name), f"{prefix}.{f.name}".lstrip("."))
    elif isinstance(value, dict) and value:
        for name, item in value.items():
            yield from _leaf_keys(item, f"{prefix}.{name}")
    else:
        yield prefix


def test_config_reference_names_every_key_of_a_default_config(reference):
    page = reference.config_reference()
    keys = list(_leaf_keys(Config()))
    assert "train.dense_optimizer.learning_rate" in keys and "distill.methods.kd.weight" in keys
    missing = [k for k in keys if f"`{k}`" not in page]
    assert not missing


def test_config_reference_names_every_method_knob_and_tower_knob(reference):
    import rocketctr.distill  # noqa: F401  (registers the methods)
    from rocketctr.config import core
    from rocketctr.distill import base as methods
    from rocketctr.towers import base as towers

    page = reference.config_reference()
    for name in methods.method_names():
        for f in dataclasses.fields(methods._REGISTRY[name].Config):
            assert f"`distill.methods.{name}.{f.name}`" in page
    for name in towers.tower_names():
        section = page.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        cls = towers._REGISTRY[name]
        config_class = getattr(cls, "Config", core.TowerConfig)
        knobs = {f.name for f in dataclasses.fields(config_class)} - {"name"}
        if config_class is core.TowerConfig and hasattr(cls, "uses"):  # one shared TowerConfig
            knobs &= set(cls.uses)
        for knob in knobs:
            assert f"`<tower>.{knob}`" in section, (name, knob)


def test_config_reference_states_defaults_and_checks(reference):
    rows = {r.key: r for r in reference.config_keys()}
    assert rows["train.batch_size"].default == "`1024`"
    assert rows["train.batch_size"].check == "must be >= 1"
    assert rows["export.max_auc_drop"].default == "`0.01`"
    assert rows["distill.mode"].check == "must be one of `co_train`, `light_only`, `booster_only`"
    assert "`lazy_adam`" in rows["train.dense_optimizer.name"].check
    methods = reference.method_keys()
    topk = {r.key: r for r in methods["topk"]}
    assert topk["distill.methods.topk.k"].check == "must be >= 1"
    assert topk["distill.methods.topk.decay"].check == "must be finite and > 0"


def _schema_paths(value, prefix=""):
    """The key paths of a schema mapping: `categorical[].multi_valued.pooling`."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _schema_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from _schema_paths(item, f"{prefix}[]")


def test_schema_reference_names_every_schema_key(reference):
    from rocketctr.features import schema

    page = reference.schema_reference()
    paths = set()
    for path in sorted((ROOT / "data_schemas").glob("*.yaml")):
        paths |= set(_schema_paths(yaml.safe_load(path.read_text(encoding="utf-8"))))
    for section, key_set, *_ in reference._schema_sections():
        paths |= {f"{section}.{k}" if section else k for k in getattr(schema, key_set)}
    assert "categorical[].multi_valued.separator" in paths and "format" in paths
    missing = [p for p in sorted(paths) if f"`{p}`" not in page]
    assert not missing
    rows = {r.key: r for r in reference.schema_keys()}
    assert rows["categorical[].multi_valued.max_length"].default == "`8`"
    assert rows["categorical[].sequence.max_length"].default == "`20`"
    assert rows["format"].default == "required"
    assert "`tfrecord`" in rows["format"].check


def test_the_schema_example_of_the_reference_loads():
    page = (ROOT / "docs/reference/schema.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```yaml\n(.*?)```", page, re.S)
    assert parse_schema(yaml.safe_load(example)).name == "criteo"


def test_every_docs_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    assert pages and all(f" {page}\n" in nav for page in pages), pages
