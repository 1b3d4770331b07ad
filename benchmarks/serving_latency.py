"""Serving latency of the exported light net against the booster it was distilled from.

Builds a model from a config (or restores a trained run), exports the light net with the
product path (`rocketctr.export.export_light`) and, for this comparison only, the booster
path with the same signature machinery (`rocketctr.export._export_tower`; the product never
exports the booster). Both SavedModels are reloaded with `tf.saved_model.load` and their
`serving_default` is timed in-process at several batch sizes: median wall time per call over
many repetitions, after a warm-up, the two models alternating call by call so that machine
noise hits both alike. This measures the model graph plus the Python call overhead of a
signature, not TF Serving's network and batching layers.

    python benchmarks/serving_latency.py                      # preset "default", fresh weights
    python benchmarks/serving_latency.py --model_dir runs/demo  # a trained run's checkpoint

Weights do not change the cost of these towers, so fresh weights time the same graph.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_description  # noqa: E402  (benchmarks/common.py)

# isort: split
import numpy as np
import tensorflow as tf

from rocketctr import export
from rocketctr.config import load_config
from rocketctr.model import build_model
from rocketctr.schema import load_schema

RESULTS = Path(__file__).resolve().parent / "results" / "serving_latency.md"


def raw_rows(input_dtypes: dict[str, tf.DType], num_rows: int, seed: int = 0) -> dict:
    """Raw serving rows with some missing values ("" / NaN), as readers deliver them."""
    rng = np.random.default_rng(seed)
    rows = {}
    for column, dtype in input_dtypes.items():
        if dtype == tf.string:
            values = rng.integers(0, 100_000, num_rows).astype(str).astype(object)
            values[rng.random(num_rows) < 0.05] = ""
        else:
            values = rng.lognormal(1.0, 2.0, num_rows).astype(np.float32)
            values[rng.random(num_rows) < 0.05] = np.nan
        rows[column] = values
    return rows


def signature_inputs(signature, rows: dict, batch_size: int) -> dict[str, tf.Tensor]:
    specs = signature.structured_input_signature[1]
    return {
        name: tf.constant(rows[name][:batch_size], dtype=spec.dtype) for name, spec in specs.items()
    }


def time_pair(light, booster, light_inputs, booster_inputs, reps: int, warmup: int):
    """Median ms per call of each signature, alternating the two call by call."""
    for _ in range(warmup):
        light(**light_inputs)
        booster(**booster_inputs)
    times = {"light": [], "booster": []}
    for _ in range(reps):
        for name, fn, inputs in (
            ("light", light, light_inputs),
            ("booster", booster, booster_inputs),
        ):
            start = time.perf_counter()
            out = fn(**inputs)
            out["probabilities"].numpy()  # the result is on the host, as a server would need
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="default", help="Preset name or YAML path.")
    parser.add_argument("--model_dir", default=None, help="Restore this run's checkpoint.")
    parser.add_argument("--batch_sizes", default="1,100,1000")
    parser.add_argument("--reps", type=int, default=200, help="Timed calls per batch size.")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed calls first.")
    parser.add_argument("--out", default=str(RESULTS), help="Markdown results file.")
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    if args.model_dir:
        model, _ = export.restore_model(args.model_dir)
        source = f"checkpoint of {args.model_dir}"
    else:
        config = load_config(args.config)
        model = build_model(config, load_schema(config.schema))
        source = f"config {args.config!r}, untrained weights"
    if not (model.has_light and model.has_booster):
        print("The model needs both towers (distill.mode co_train).", file=sys.stderr)
        return 1
    mc = model.rocket_config.model

    with tempfile.TemporaryDirectory() as tmp:
        light_dir = export.export_light(model, Path(tmp) / "light")
        booster_dir = export._export_tower(model, Path(tmp) / "booster", tower="booster")
        light = tf.saved_model.load(str(light_dir)).signatures["serving_default"]
        booster = tf.saved_model.load(str(booster_dir)).signatures["serving_default"]
        all_dtypes = {
            c: tf.string if model.schema.is_string_column(c) else tf.float32
            for c in model.schema.input_columns
        }
        rows = raw_rows(all_dtypes, max(batch_sizes))
        results = {}
        for batch in batch_sizes:
            results[batch] = time_pair(
                light, booster, signature_inputs(light, rows, batch),
                signature_inputs(booster, rows, batch), args.reps, args.warmup,
            )  # fmt: skip

    params = export.parameter_counts(model)
    flops = export.tower_flops(model)
    machine = machine_description()
    lines = [
        "# Serving latency: light vs booster",
        "",
        f"Model: {source}; schema {model.schema.name}, embedding_dim {mc.embedding_dim}.",
        f"- light: `{mc.light.name}` {list(mc.light.hidden_units)}, "
        f"{flops['light']:,} FLOPs/example, {params['light']['tower']:,} tower parameters",
        f"- booster: `{mc.booster.name}` {list(mc.booster.hidden_units)}, "
        f"{flops['booster']:,} FLOPs/example, {params['booster']['tower']:,} tower parameters",
        f"- shared embedding table: {params['light']['embedding']:,} parameters",
        "",
        f"Machine: nproc {machine['nproc']}, CPU {machine['cpu']}, GPUs {machine['gpus']}, "
        f"Python {machine['python']}, TensorFlow {machine['tensorflow']}.",
        f"In-process `serving_default` of the reloaded SavedModels; median of {args.reps} "
        f"calls after {args.warmup} warm-up calls, light and booster alternating.",
        "",
        "| batch | light ms | booster ms | booster / light |",
        "|---:|---:|---:|---:|",
    ]
    for batch, r in results.items():
        ratio = r["booster"] / r["light"]
        lines.append(f"| {batch} | {r['light']:.3f} | {r['booster']:.3f} | {ratio:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"Written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
