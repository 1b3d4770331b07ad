"""`export_from_model_dir` in bounded memory: a 2M-row table costs at most two tables (and
SLACK) of peak RSS beyond what the export of a tiny table costs (TensorFlow, graphs, eval
rows)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.helpers import subprocess_env

pytestmark = pytest.mark.integration  # every test here starts a process

DIM = 16
BIG_ROWS = 2_000_000  # 122 MiB of float32 at dim 16
TINY_ROWS = 1_000
MiB = 2**20
# What a big table may cost beyond a tiny one's export, besides two tables (the restored
# one, and the reloaded export checked against it): the bookkeeping of TensorFlow's pool
# allocator (oneDNN's), which grows with the regions it reserves, and the blocks in flight.
# Measured at 2M x 16, against 244 MiB for two tables: 252 MiB for float32, 207 MiB for
# int8 (245 and 199 MiB with TF_ENABLE_ONEDNN_OPTS=0, whose allocator keeps no pool); the
# exporter of rev 08fc25c took 895 and 1,046 MiB (7.3 and 8.6 tables).
SLACK = 32 * MiB

_MAKE_RUNS = """
import sys
from pathlib import Path
import rocketctr
import tensorflow as tf
from rocketctr.config.core import Config, save_config
from rocketctr.runs.feature_format import record_run_format
from rocketctr.model.cotrain import build_model
from rocketctr.runs.rundir import record_eval_patterns
from rocketctr.features.schema import load_schema

eval_file, dim = sys.argv[1], int(sys.argv[2])
for run, schema_path in zip(sys.argv[3::2], sys.argv[4::2]):
    config = Config.from_dict({
        "schema": schema_path,
        "model": {"embedding_dim": dim, "light": {"name": "mlp", "hidden_units": [4]},
                  "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1}},
    })
    model = build_model(config, load_schema(schema_path))  # with Adagrad's slots, as trained
    run = Path(run)
    run.mkdir()
    save_config(config, run / "config.yaml")
    record_run_format(run)
    record_eval_patterns(run, [eval_file])
    checkpoint = tf.train.Checkpoint(model=model, epoch=tf.Variable(1, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(run / "checkpoints"), 1).save(checkpoint_number=1)
"""

_EXPORT = """
import json, sys
from rocketctr import serving

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

start = status("VmRSS:")
path = serving.export_from_model_dir(sys.argv[1], sys.argv[2], force=True,
                                     overrides={"export.embedding_dtype": sys.argv[3]})
info = serving.read_export_info(path)["embedding_table"]
print(json.dumps({"start": start, "peak": status("VmHWM:"), "rows": info["rows"]}))
"""


def _python(code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _runs(tmp_path: Path, *sizes: int) -> list[Path]:
    """A run dir for each size: one hashed field of that many table rows and a dense one,
    with eval rows; its checkpoint holds untrained weights and Adagrad's slots."""
    eval_file = tmp_path / "eval.tsv"
    eval_file.write_text("".join(f"{i % 2}\tv{i}\t{i % 7}\n" for i in range(400)))
    args = []
    for rows in sizes:
        spec = {
            "name": f"wide_{rows}",
            "format": "tsv",
            "header": False,
            "columns": ["y", "c", "n"],
            "label": "y",
            "dense": [{"name": "n", "transform": "log1p"}],
            "categorical": [{"name": "c", "hash_buckets": rows}],
        }
        schema = tmp_path / f"wide_{rows}.yaml"
        schema.write_text(yaml.safe_dump(spec))
        args += [str(tmp_path / f"run_{rows}"), str(schema)]
    _python(_MAKE_RUNS, str(eval_file), str(DIM), *args)
    return [Path(a) for a in args[::2]]


def _growth(run: Path, dtype: str) -> tuple[int, int]:
    """(peak RSS of an export process beyond its RSS when the export starts, in bytes; the
    rows of the exported table)."""
    out = _python(_EXPORT, str(run), str(run / f"export_{dtype}"), dtype)
    found = json.loads(out.splitlines()[-1])
    return found["peak"] - found["start"], found["rows"]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_export_peak_memory_is_at_most_two_tables_beyond_a_tiny_export(tmp_path):
    tiny, big = _runs(tmp_path, TINY_ROWS, BIG_ROWS)
    constant, _ = _growth(tiny, "float32")
    for dtype in ("float32", "int8"):
        grown, rows = _growth(big, dtype)
        table = rows * DIM * 4  # float32, as trained and restored
        assert rows == BIG_ROWS
        assert grown - constant <= 2 * table + SLACK, (dtype, (grown - constant) / MiB)


# A parent holding 1.5 GiB starts a process that reports its own peak the way the export's
# line does (`peak memory N MiB`). Linux's getrusage ru_maxrss would count the parent's.
_PEAK_IN_CHILD = """
import subprocess, sys
held = b"x" * (1536 * 2**20)  # every page written
code = "from rocketctr.serving.exporter import peak_rss_bytes; print(peak_rss_bytes())"
done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
print(done.stdout.split()[-1])
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_the_reported_peak_is_the_process_own_not_its_parents():
    peak = int(_python(_PEAK_IN_CHILD).split()[-1])
    assert 100 * MiB < peak < 1536 * MiB, peak / MiB  # TensorFlow loaded; not the parent's
