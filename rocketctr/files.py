"""Writing the small files of a run dir so that a process killed mid-write leaves the old one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | Path, text: str) -> None:
    """Writes `text` to `path` through a sibling `.partial` file renamed over it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text)
    except OSError as e:  # a failed write() names no file: name it (disk full, quota)
        partial.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    os.replace(partial, path)


class PathError(ValueError):
    """A path the command must write to cannot be written; the message is one line."""


def check_writable_dir(path: str | Path, what: str) -> None:
    """Refuses, before any work, a directory that cannot be created or written to: a file in
    its place (or in place of a parent), a read-only filesystem, no write permission.
    Remote paths (gs://, hdfs://, ...) are left to their filesystem.

    Args:
        path: the directory (it may not exist yet).
        what: how the message names it, e.g. "--model_dir".

    Raises:
        PathError: naming the path and what is wrong.
    """
    if "://" in str(path):
        return
    path = Path(path).absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise PathError(f"{what} {path} {where}, not a directory.")
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise PathError(f"{what} {path} is on a read-only filesystem ({existing}).")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PathError(f"{what} {path}: this user may not write in {existing}.")
