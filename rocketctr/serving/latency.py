"""Serving latency of a SavedModel's `serving_default`, measured in-process.

Two modes, each timing several signatures side by side (alternating, so machine noise hits
them alike; only their ratios mean much on a shared machine):

- **call**: one Python call of the signature per request; median wall time after a
  warm-up. The graph plus the Python call overhead.
- **loop**: the signature's graph run many times inside one `tf.function` while loop
  (sequential iterations, every result summed into the loop state so nothing is pruned).
  What a C++ server such as TF Serving pays for the graph itself, without its RPC,
  decoding and batching layers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf


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


def time_calls(fns: dict[str, Callable], inputs: dict[str, dict], reps: int, warmup: int):
    """Median ms per in-process call of each signature, alternating them call by call."""
    for _ in range(warmup):
        for name, fn in fns.items():
            fn(**inputs[name])
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn(**inputs[name])
            out["probabilities"].numpy()  # the result is on the host, as a server would need
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def _total(out) -> tf.Tensor:
    """A scalar that depends on every output tensor, so no part of a graph is pruned."""
    return tf.add_n(
        [tf.reduce_sum(tf.cast(t, tf.float32)) for t in tf.nest.flatten(out) if t.dtype.is_numeric]
    )


def graph_loop(fn: Callable) -> Callable:
    """A tf.function running `fn(*args)` `n` times in one while loop, one after the other."""

    @tf.function
    def loop(n, args):
        total = tf.constant(0.0)
        for _ in tf.range(n):
            # Sequential iterations: a request's latency, not the throughput of overlapped ones.
            tf.autograph.experimental.set_loop_options(parallel_iterations=1)
            total += _total(fn(*args))
        return total

    return loop


def time_loops(loops: dict[str, tuple[Callable, tuple]], target_s: float, rounds: int):
    """Median ms per loop iteration of each (loop, args), loops alternating round by round.

    Each loop is traced and run once first; its iteration count is then chosen so that one
    timed loop lasts about `target_s`.
    """
    counts = {}
    for name, (loop, args) in loops.items():
        loop(tf.constant(2), args).numpy()  # trace and warm up
        start = time.perf_counter()
        loop(tf.constant(20), args).numpy()
        per_iteration = (time.perf_counter() - start) / 20
        counts[name] = int(min(20_000, max(20, target_s / max(per_iteration, 1e-7))))
    samples = {name: [] for name in loops}
    for _ in range(rounds):
        for name, (loop, args) in loops.items():
            n = tf.constant(counts[name])
            start = time.perf_counter()
            loop(n, args).numpy()
            samples[name].append((time.perf_counter() - start) * 1000 / counts[name])
    return {name: statistics.median(s) for name, s in samples.items()}
