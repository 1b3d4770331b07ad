"""Test helper: runs the `rocketctr` command line and SIGKILLs it inside one of its writes.

    python -m tests.training.kill_at_write <write point> <n> <rocketctr arguments...>

Write points: `best`, `backup` and `checkpoints` (a TensorFlow checkpoint written under that
directory of the model dir), and `export` (a version of the light net). The process kills
itself during the n-th write of that kind (1-based), at a point where the write's
temporary exists and the real name does not yet:

- a checkpoint: its tensors are in `ckpt-N_temp/`, not yet merged into `ckpt-N.*`;
- an export: the SavedModel and its warmup file are in `<base>/.tmp-<version>-<pid>/`,
  not yet renamed to `<base>/<version>`.

It prints `killing at <path>` first, so a test can tell the kill came where it should.
"""

from __future__ import annotations

import os
import signal
import sys

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

WRITE_POINTS = ("best", "backup", "checkpoints", "export")


def _kill(path: str, temporary: str) -> None:
    assert os.path.isdir(temporary), f"no temporary {temporary} at the kill"
    print(f"killing at {path} ({temporary} written)", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, n: int) -> None:
    """Patches the write of `point` to kill the process at its n-th call."""
    seen = 0

    def due() -> bool:
        nonlocal seen
        seen += 1
        return seen == n

    if point == "export":
        from rocketctr.serving import exporter

        write_export_info = exporter.write_export_info

        def write_info_then_kill(tmp, info):
            if due():
                _kill(str(tmp.parent), str(tmp))
            return write_export_info(tmp, info)

        exporter.write_export_info = write_info_then_kill
        return
    from tensorflow.python.ops import gen_io_ops

    merge = gen_io_ops.merge_v2_checkpoints  # called once the shards are in ckpt-N_temp/

    def merge_or_kill(checkpoint_prefixes, destination_prefix, *args, **kwargs):
        prefix = destination_prefix
        prefix = prefix.numpy().decode() if hasattr(prefix, "numpy") else str(prefix)
        if os.path.basename(os.path.dirname(prefix)) == point and due():
            _kill(prefix, prefix + "_temp")
        return merge(checkpoint_prefixes, destination_prefix, *args, **kwargs)

    gen_io_ops.merge_v2_checkpoints = merge_or_kill


def main() -> None:
    point, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if point not in WRITE_POINTS:
        raise SystemExit(f"write point must be one of {WRITE_POINTS}, not {point!r}")
    _arm(point, n)
    from rocketctr import cli

    sys.argv = ["rocketctr", *args]
    cli.run()


if __name__ == "__main__":
    main()
