"""Versioned, atomic publishing under the export base TF Serving watches.

    <export_base>/<version>/            numeric versions, counting up
    <export_base>/.tmp-<version>-<pid>  a version being written (hidden, non-numeric: TF
                                        Serving ignores it)

A version is written and verified in its temporary sibling and only then renamed into
place, so TF Serving never sees a half-written or unverified version. A killed exporter
leaves its temporary dir behind; the next export removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rocketctr.serving.export_error import ExportError

log = logging.getLogger("rocketctr")

_TMP_NAME = re.compile(r"\.tmp-(\d+)-(\d+)")  # .tmp-<version>-<pid>, nothing else
T = TypeVar("T")


def versions(export_base: str | Path) -> list[Path]:
    """The numeric version directories under `export_base`, oldest first."""
    base = Path(export_base)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(found, key=lambda p: int(p.name))


def next_version(export_base: str | Path) -> int:
    """1 + the largest numeric version directory under `export_base` (1 if there is none)."""
    found = versions(export_base)
    return int(found[-1].name) + 1 if found else 1


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temp_dirs(export_base: str | Path) -> list[Path]:
    """Removes `.tmp-<version>-<pid>` dirs of exporters that no longer run on this host.

    Only that exact name pattern is touched; a live exporter's dir (its pid runs) is kept.

    Returns:
        The removed dirs.
    """
    removed = []
    for path in sorted(Path(export_base).iterdir()):
        match = _TMP_NAME.fullmatch(path.name)
        if not match or not path.is_dir() or path.is_symlink() or _running(int(match[2])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.info("Removed %s, left by an export that did not finish", path)
        removed.append(path)
    return removed


def publish_version(export_base: str | Path, write: Callable[[Path, int], T]) -> tuple[Path, T]:
    """Writes a new version with `write(tmp_dir, version)`, then renames it into place.

    Args:
        export_base: the directory TF Serving watches.
        write: fills `tmp_dir` (a SavedModel, verified) and returns a result; anything it
            raises leaves nothing behind (not even `export_base`, if this call created it).

    Returns:
        (the version directory, what `write` returned).
    """
    base = Path(export_base)
    created = not base.exists()
    base.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(base)
    version = next_version(base)
    final = base / str(version)
    tmp = base / f".tmp-{version}-{os.getpid()}"
    try:
        result = write(tmp, version)
        if final.exists():
            raise ExportError(f"{final} appeared while exporting (another exporter?).")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created:  # a refused first export leaves no trace
            with contextlib.suppress(OSError):
                base.rmdir()
        raise
    return final, result
