"""Faults of the machine, not of the data: full disks, read-only targets, files where a
directory belongs. Each ends in one line and exit code 2, leaves the last good state, and
the same command with the fault gone finishes with nothing temporary left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import TINY_FLAGS, temporaries

pytestmark = pytest.mark.integration  # every test here starts a process

TINY = [*TINY_FLAGS, "--set=train.batch_size=256"]


def _rocketctr(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rocketctr: error: ")
    return last


def _tmpfs(path: Path, options: str) -> Path:
    """Mounts a tmpfs at `path` (made here); skips the test where that is not allowed."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    return path


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (too small for a checkpoint of the tiny model's 672k-row table);
    `grow()` gives it room. Skips where a tmpfs cannot be mounted (not root)."""
    disk = _tmpfs(tmp_path / "disk", "size=4m")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=400m", str(disk)], check=True)

    yield SimpleNamespace(path=disk, grow=grow)
    subprocess.run(["umount", "-l", str(disk)])


def _bytes(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


@pytest.mark.parametrize(
    ("kind", "what", "extra"),
    [
        ("best", "the selected epoch's weights", []),  # the first write of an epoch's end
        ("checkpoints", "the epoch checkpoint", ["--set=train.restore_best=false"]),
        ("backup", "the mid-epoch backup", ["--set=train.checkpoint_every_steps=5"]),
    ],
)
def test_a_full_disk_stops_training_in_one_line_and_the_rerun_with_room_finishes(
    data, small_disk, kind, what, extra
):
    """The line names the write, the space it needs (its variables' bytes: the size of the
    state written once there is room, to rounding) and the space free."""
    run = small_disk.path / "run"
    cmd = [
        "train",
        f"--train={data[0]}",
        f"--eval={data[1]}",
        *TINY,
        "--set=train.num_epochs=1",
        *extra,
        f"--model_dir={run}",
        "--force",  # one epoch on 6,000 synthetic rows: the light net may be at chance
    ]
    line = _one_line_error(_rocketctr(*cmd))
    found = re.fullmatch(
        rf"rocketctr: error: No space left on device: {run}/{kind}/ckpt-\d+ \(about ([\d.]+) "
        rf"MiB needed for {what}, ([\d.]+) MiB free on the filesystem of {run}/{kind}: free "
        r"some space, or point the command at another disk; the last good state is kept\)",
        line,
    )
    assert found, line
    needed, free = float(found[1]), float(found[2])
    assert free < needed and free <= 4.0
    assert temporaries(small_disk.path) == []  # removed at once: the space is free again
    small_disk.grow()
    again = _rocketctr(*cmd)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run / "export" / "1" / "saved_model.pb").exists()
    assert temporaries(small_disk.path) == []
    # A backup holds what an epoch checkpoint holds (and is removed when the run ends).
    written = run / ("checkpoints" if kind == "backup" else kind)
    prefix = sorted(written.glob("ckpt-*.index"))[0].name.removesuffix(".index")
    size = _bytes(written.glob(prefix + ".*")) / 2**20
    assert needed - 0.05 <= size <= needed + 0.05 + 0.01 * needed, (size, needed)


def test_an_export_or_a_prediction_onto_a_full_disk_leaves_nothing(data, small_disk, tmp_path):
    run = tmp_path / "run"
    trained = _rocketctr(
        "train", f"--train={data[0]}", f"--eval={data[1]}", *TINY, f"--model_dir={run}", "--force"
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    line = _one_line_error(
        _rocketctr(
            "export", f"--model_dir={run}", f"--export_dir={small_disk.path / 'export'}", "--force"
        )
    )
    found = re.fullmatch(
        rf"rocketctr: error: No space left on device: {small_disk.path / 'export'} \(at least "
        rf"([\d.]+) MiB needed for the export, [\d.]+ MiB free on the filesystem of "
        rf"{small_disk.path}: free some space, .*\)",
        line,
    )
    assert found, line
    # At least: the variables (the table's rows, the light net); the graph comes on top.
    variables = _bytes((run / "export" / "1" / "variables").iterdir()) / 2**20
    assert abs(float(found[1]) - variables) <= 0.05 + 0.01 * variables, (found[1], variables)
    assert float(found[1]) < _bytes((run / "export" / "1").rglob("*")) / 2**20
    assert not (small_disk.path / "export").exists()  # no version, no temporary, no base
    # Fill the disk, then score into it: the partial file goes, one line says why.
    with pytest.raises(OSError), open(small_disk.path / "filler", "wb") as f:
        f.write(b"\0" * 8 * 2**20)
    line = _one_line_error(
        _rocketctr(
            "predict",
            f"--model_dir={run}",
            f"--data={data[1]}",
            f"--output={small_disk.path / 'scores.csv'}",
        )
    )
    assert "No space left on device" in line
    assert sorted(p.name for p in small_disk.path.iterdir()) == ["filler"]


def test_write_targets_are_checked_before_training(tmp_path, data):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    base = ["train", f"--train={data[0]}", f"--eval={data[1]}", *TINY]
    line = _one_line_error(_rocketctr(*base, f"--model_dir={a_file}"))
    assert line == f"rocketctr: error: --model_dir {a_file} is a file, not a directory."
    line = _one_line_error(_rocketctr(*base, f"--model_dir={a_file / 'run'}"))
    assert line == (
        f"rocketctr: error: --model_dir {a_file / 'run'} cannot be created: {a_file} "
        "is a file, not a directory."
    )
    proc = _rocketctr(*base, f"--model_dir={tmp_path / 'run'}", f"--export_dir={a_file}")
    assert _one_line_error(proc).endswith(f"--export_dir {a_file} is a file, not a directory.")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_read_only_filesystem_is_refused_before_training(tmp_path, data):
    disk = _tmpfs(tmp_path / "ro", "size=1m,ro")
    try:
        proc = _rocketctr(
            "train", f"--train={data[0]}", f"--eval={data[1]}", *TINY, f"--model_dir={disk / 'run'}"
        )
        assert _one_line_error(proc) == (
            f"rocketctr: error: --model_dir {disk / 'run'} is on a read-only filesystem ({disk})."
        )
    finally:
        subprocess.run(["umount", "-l", str(disk)])
    assert os.listdir(disk) == []


def test_eval_rows_of_one_class_are_refused_before_training(tmp_path, data):
    negatives = tmp_path / "negatives.tsv"
    lines = Path(data[1]).read_text().splitlines(True)
    negatives.write_text("".join(line for line in lines if line.startswith("0\t")))
    proc = _rocketctr(
        "train",
        f"--train={data[0]}",
        f"--eval={negatives}",
        *TINY,
        f"--model_dir={tmp_path / 'run'}",
    )
    rows = sum(1 for line in lines if line.startswith("0\t"))
    assert _one_line_error(proc) == (
        f"rocketctr: error: The eval data ['{negatives}'] hold one class only ({rows:,} rows, "
        "all negative): no AUC can be measured on them, so train.selection_metric "
        "'light_auc' cannot select an epoch. Give eval rows of both classes, or select on "
        "light_bce."
    )
    assert "Epoch 1/" not in proc.stdout


def test_a_small_file_onto_a_full_disk_is_named_with_its_size(small_disk):
    """A run dir's small files (history, config, metrics) go through `write_atomically`."""
    from rocketctr.cli import user_error_message
    from rocketctr.files import DiskFullError, write_atomically

    with pytest.raises(OSError), open(small_disk.path / "filler", "wb") as f:
        f.write(b"\0" * 8 * 2**20)
    target = small_disk.path / "history.json"
    with pytest.raises(DiskFullError) as raised:
        write_atomically(target, "x" * 50_000)
    assert user_error_message(raised.value) == (
        f"No space left on device: {target} (about 0.048 MiB needed for history.json, 0.0 MiB "
        f"free on the filesystem of {small_disk.path}: free some space, or point the command "
        "at another disk; the last good state is kept)"
    )
    assert sorted(os.listdir(small_disk.path)) == ["filler"]
