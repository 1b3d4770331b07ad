"""Reading the YAML files users write (configs, schemas): strict where YAML is lenient.

`yaml.safe_load` keeps the last of two equal keys without a word, so a config that sets
`batch_size` twice trains with whichever came last. `load` refuses that, and turns a syntax
error, a missing file or a directory into one `error(...)` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with a repeated key."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None,
                f"key {key!r} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                key_node.start_mark,
            )  # fmt: skip
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, source: str, error: type[Exception] = ValueError) -> Any:
    """Parses YAML text; a syntax error or repeated key is `error` naming `source`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{source}{where}: not valid YAML: {problem}") from None


def load(path: str | Path, error: type[Exception] = ValueError) -> Any:
    """Reads and parses a YAML file; every failure is one `error` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path} is a directory, not a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"File not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot be read as UTF-8 text ({e})") from None
    return parse(text, str(path), error)
