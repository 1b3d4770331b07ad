"""The towers' compute precision (`train.mixed_precision`): float32, or bfloat16 where the
machine computes it natively.

bf16 towers (the `mixed_bfloat16` policy) keep every variable, the embedding tables and the
losses in float32; only the towers' matmuls and activations run in bf16. Where bf16 has no
hardware support it is emulated and slower than float32, hence `auto`.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import tensorflow as tf
import tf_keras

# CPU flags (Linux /proc/cpuinfo) of native bf16 matmuls: AVX512-BF16 (Cooper Lake, Zen 4
# and later) and AMX-BF16 (Sapphire Rapids and later).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def native_bfloat16() -> bool:
    """Whether this machine computes bf16 natively: every visible GPU of compute capability
    8.0 or more (Ampere and later), or, without a GPU, a CPU with a flag of BF16_CPU_FLAGS."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = [tf.config.experimental.get_device_details(g) for g in gpus]
        return all(tuple(d.get("compute_capability", (0, 0))) >= (8, 0) for d in details)
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next(
        (ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), []
    )
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def uses_bfloat16(setting: str) -> bool:
    """Whether `train.mixed_precision` (auto | bfloat16 | float32) puts the towers in bf16."""
    return setting == "bfloat16" or (setting == "auto" and native_bfloat16())


def describe(setting: str) -> str:
    """A line that says what the towers compute in, and why."""
    dtype = "bfloat16" if uses_bfloat16(setting) else "float32"
    why = ""
    if setting == "auto":
        native = dtype == "bfloat16"
        why = ": this machine computes bf16 natively" if native else ": no native bf16 here"
    return f"Towers compute in {dtype} (train.mixed_precision: {setting}{why})."


@contextlib.contextmanager
def tower_precision(setting: str):
    """Builds towers under the `mixed_bfloat16` policy when `setting` asks for it.

    Keras sublayers take the global policy at construction, so it is set around the towers
    only and restored: embeddings, losses and every variable stay float32.
    """
    if not uses_bfloat16(setting):
        yield
        return
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


@contextlib.contextmanager
def float32_compute(layer: tf_keras.layers.Layer):
    """Computes `layer` and every layer inside it in float32 while the block runs, whatever
    policy they were built with; their variables are float32 already. The export traces and
    checks the light net under it: bf16 scores differ from float32 ones by ~1e-3."""
    layers = [layer, *(m for m in layer.submodules if isinstance(m, tf_keras.layers.Layer))]
    policies = [each.dtype_policy for each in layers]
    for each in layers:
        each._set_dtype_policy("float32")  # tf_keras sets a policy only at construction
    try:
        yield
    finally:
        for each, policy in zip(layers, policies, strict=True):
            each._set_dtype_policy(policy)
