"""Helpers the benchmark scripts share: the reference config, synthetic data, machine info.

Not part of the package: the scripts in `benchmarks/` import it by file location.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import tensorflow as tf

from rocketctr.config.core import Config
from rocketctr.data import make_dataset
from rocketctr.data.synthetic import ensure_synthetic_criteo
from rocketctr.features.schema import Schema

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Targets from the issue "Fast training, measured side by side": printed, never asserted.
TARGETS = {
    "co_train_vs_booster": 0.9,
    "vs_deepctr": 1.5,
    "co_train_vs_two_stage_time": 0.6,
    "booster_fp32_utilisation": 0.6,
    "frappe_booster_auc": 0.98,
    "frappe_gap_closed": 0.3,
}


def reference_config(
    mode: str = "co_train",
    embedding_optimizer: str = "adagrad",
    jit_compile: bool = False,
    batch_size: int = 4096,
    **distill: Any,
) -> Config:
    """The issue's reference: Criteo shape, emb 16, DCN 3 crosses ∥ MLP 1024-512-256, MLP-64."""
    learning_rate = 0.05 if embedding_optimizer == "adagrad" else 0.001
    return Config.from_dict(
        {
            "schema": "criteo",
            "model": {
                "embedding_dim": 16,
                "booster": {"name": "dcn", "hidden_units": [1024, 512, 256], "num_cross_layers": 3},
                "light": {"name": "mlp", "hidden_units": [64]},
            },
            "distill": {"mode": mode, "methods": {"logit_mse": {"weight": 0.1}}, **distill},
            "train": {
                "batch_size": batch_size,
                "jit_compile": jit_compile,
                "embedding_optimizer": {
                    "name": embedding_optimizer,
                    "learning_rate": learning_rate,
                },
            },
        }
    )


def synthetic_files(directory: Path, num_train_rows: int, num_eval_rows: int) -> tuple[Path, Path]:
    """Synthetic Criteo-shaped train/eval TSV files (rocketctr.data.synthetic), cached by size."""
    return ensure_synthetic_criteo(directory, num_train_rows, num_eval_rows, seed=0)


def cached_batches(schema: Schema, path: Path, batch_size: int) -> tf.data.Dataset:
    """Reads a file once through make_dataset, keeps the full batches in memory, repeats.

    Training throughput then measures the model step alone, not parsing. A last partial
    batch is dropped so that every step has the same shape.
    """
    batches = [b for b in make_dataset(schema, str(path), batch_size) if len(b[1]) == batch_size]
    if not batches:
        raise ValueError(f"{path} has fewer than batch_size={batch_size} rows.")
    stacked = tf.nest.map_structure(lambda *t: tf.stack(t), *batches)
    return tf.data.Dataset.from_tensor_slices(stacked).repeat().prefetch(2)


def matmul_peaks(size: int = 2048, reps: int = 10) -> dict[str, float]:
    """Best GFLOP/s of a large square `tf.matmul` in float32 and bfloat16 (2·n³ FLOPs)."""
    peaks = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        a = tf.random.normal([size, size], dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
        matmul = tf.function(
            lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[0, :1], tf.float32))
        )
        matmul(a, b).numpy()  # warm-up
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            matmul(a, b).numpy()
            best = min(best, time.perf_counter() - start)
        peaks[name] = 2 * size**3 / best / 1e9
    return peaks


def machine_description() -> dict[str, str]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu_model = platform.processor() or "unknown"
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": str(nproc),
        "cpu": cpu_model,
        "gpus": str(len(tf.config.list_physical_devices("GPU"))),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS_DIR / f"{name}.json", RESULTS_DIR / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    md_path.write_text(markdown)
    return json_path, md_path


def interleaved_timing(
    runners: dict[str, Callable[[int], None]], steps: int, rounds: int
) -> dict[str, float]:
    """Seconds per step of each runner, timed round-robin so machine noise hits all alike.

    Each runner is called `rounds` times with `steps // rounds` steps; the result is the
    median over rounds of the per-step time (robust to another job's bursts).
    """
    per_round = max(1, steps // rounds)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(per_round)
            samples[name].append((time.perf_counter() - start) / per_round)
    return {name: sorted(s)[len(s) // 2] for name, s in samples.items()}


def load_feature_processor(path: str | Path) -> type:
    """The `FeatureProcessor` class of another `rocketctr/features/processor.py` file.

    For timing the current processor against an earlier one side by side in one run, e.g.
    `git show <rev>:rocketctr/features/processor.py > /tmp/features_old.py`. The file is loaded
    as a module of its own; it may import the rest of `rocketctr` (this checkout's).
    """
    spec = importlib.util.spec_from_file_location("baseline_features", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FeatureProcessor


def with_feature_processor(model, processor_class: type):
    """Replaces a built model's feature processors by `processor_class` ones (same features).

    Processors hold no variables, so the model's weights and optimizers are untouched; the
    next traced step uses the replacement's graph.
    """
    schema = model.schema
    light = [f.name for f in model.light_processor.categorical + model.light_processor.dense]
    model.processor = processor_class(schema, name="features")
    model.light_processor = processor_class(schema, light, name="light_features")
    return model
