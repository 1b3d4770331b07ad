"""Writing the small files of a run dir so that a process killed mid-write leaves the old one,
and naming a write that found the disk full with the space it needed."""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

# A full disk or quota, as an errno or in the text of errors that carry none (TensorFlow's
# file writes raise ResourceExhaustedError with the OS error's text).
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded")


class DiskFullError(OSError):
    """A write that found its disk full (or its quota used up).

    An OSError with the errno, its text and the path written (`filename`), and what that
    write needed: `needed` bytes (None when not known) for `what` ("the epoch checkpoint").
    `at_least`: `needed` counts only part of what is written (an export's variables, not
    its graph).
    """

    def __init__(
        self, code: int, text: str, path: str, needed: int | None, what: str, at_least: bool = False
    ) -> None:
        super().__init__(code, text, path)
        self.needed, self.what, self.at_least = needed, what, at_least


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the disk (or the quota) is full."""
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        return True
    return bool(_DISK_FULL_TEXT.search(str(getattr(error, "message", None) or error)))


@contextlib.contextmanager
def naming_disk_full(
    path: str | Path,
    what: str,
    needed: Callable[[], int | None],
    at_least: bool = False,
    cleanup: Callable[[], object] | None = None,
) -> Iterator[None]:
    """Turns a full disk met in the block into a `DiskFullError` naming `path` and the space
    the write needs; other errors pass unchanged.

    Args:
        path: what the block writes (a checkpoint prefix, a file, an export base).
        what: what it is, for the message.
        needed: the bytes it needs, called only after a failure (so it may cost a little).
        at_least: `needed` is a lower bound.
        cleanup: called first after a failure (e.g. to remove a half-written temporary).
    """
    try:
        yield
    except Exception as e:
        if not is_disk_full(e):
            raise
        if cleanup is not None:
            with contextlib.suppress(Exception):
                cleanup()
        try:
            size = needed()
        except Exception:  # noqa: BLE001  (an estimate is a courtesy: never mask the error)
            size = None
        code = e.errno if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS else None
        text = _DISK_FULL_TEXT.search(str(getattr(e, "message", None) or e))
        code = code or (errno.EDQUOT if text and text[0].startswith("Disk") else errno.ENOSPC)
        raise DiskFullError(code, os.strerror(code), str(path), size, what, at_least) from e


def variable_bytes(root: object) -> int:
    """The bytes of the variables a checkpoint of `root` (a `tf.train.Checkpoint`, a
    `tf.Module`) holds, optimizer slots included: what writing it needs, less its index."""
    import tensorflow as tf
    from tensorflow.python.checkpoint import checkpoint as tf_checkpoint

    total, seen = 0, set()
    for obj in tf_checkpoint.list_objects(root):
        if isinstance(obj, tf.Variable) and id(obj) not in seen:
            seen.add(id(obj))
            total += obj.shape.num_elements() * obj.dtype.size
    return total


def write_atomically(path: str | Path, text: str) -> None:
    """Writes `text` to `path` through a sibling `.partial` file renamed over it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    data = text.encode()
    try:
        with naming_disk_full(path, path.name, lambda: len(data)):
            partial.write_bytes(data)
    except OSError as e:  # a failed write() names no file: name it (disk full, quota)
        partial.unlink(missing_ok=True)
        if isinstance(e, DiskFullError):
            raise
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


def copy_tree(source: str | Path, destination: str | Path) -> None:
    """Copies a directory's contents into `destination` (local or any tf.io.gfile scheme)."""
    import tensorflow as tf  # this module is read before TensorFlow loads

    source, destination = str(source), str(destination)
    tf.io.gfile.makedirs(destination)
    for directory, _, files in tf.io.gfile.walk(source):
        relative = directory[len(source) :].lstrip("/")
        target = f"{destination}/{relative}" if relative else destination
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(f"{directory}/{name}", f"{target}/{name}", overwrite=True)
