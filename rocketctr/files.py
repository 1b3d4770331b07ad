"""Writing the small files of a run dir so that a process killed mid-write leaves the old one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | Path, text: str) -> None:
    """Writes `text` to `path` through a sibling `.partial` file renamed over it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
